"""Each schedule yields exactly the batch sequence its definition says, on small fake datasets."""
import pytest

from minbert_lib.schedules import SCHEDULES, TaskStream, baseline_epoch, tm1_epoch, tm2_epoch


def fake_stream(task, num_batches):
    """Batch b of pass p is the label 'task:p:b', so a sequence shows which pass each batch came from."""
    return TaskStream(lambda p: [f"{task}:{p}:{b}" for b in range(num_batches)])


def fake_streams(sst=3, quora=5, sts=2):
    return {"sst": fake_stream("sst", sst), "quora": fake_stream("quora", quora), "sts": fake_stream("sts", sts)}


def test_baseline_runs_one_pass_of_sst_per_epoch():
    streams = fake_streams()
    assert list(baseline_epoch(streams)) == [{"sst": "sst:0:0"}, {"sst": "sst:0:1"}, {"sst": "sst:0:2"}]
    assert [s["sst"] for s in baseline_epoch(streams)] == ["sst:1:0", "sst:1:1", "sst:1:2"]


def test_tm1_runs_the_largest_and_cycles_the_smaller_ones():
    streams = fake_streams()
    epoch = list(tm1_epoch(streams))
    assert [s["quora"] for s in epoch] == [f"quora:0:{b}" for b in range(5)]
    assert [s["sst"] for s in epoch] == ["sst:0:0", "sst:0:1", "sst:0:2", "sst:1:0", "sst:1:1"]
    assert [s["sts"] for s in epoch] == ["sts:0:0", "sts:0:1", "sts:1:0", "sts:1:1", "sts:2:0"]
    # the next epoch starts every dataset on a fresh pass
    second = list(tm1_epoch(streams))
    assert second[0] == {"sst": "sst:2:0", "quora": "quora:1:0", "sts": "sts:3:0"}
    assert SCHEDULES["TM1"].steps_per_epoch(streams) == 5


def test_tm2_runs_the_smallest_and_resumes_the_others():
    streams = fake_streams()
    first = list(tm2_epoch(streams))
    assert first == [{"sst": "sst:0:0", "quora": "quora:0:0", "sts": "sts:0:0"},
                     {"sst": "sst:0:1", "quora": "quora:0:1", "sts": "sts:0:1"}]
    second = list(tm2_epoch(streams))
    assert [s["quora"] for s in second] == ["quora:0:2", "quora:0:3"]  # resumed where it stopped
    assert [s["sst"] for s in second] == ["sst:0:2", "sst:1:0"]         # wrapped into a new pass
    assert [s["sts"] for s in second] == ["sts:1:0", "sts:1:1"]
    assert SCHEDULES["TM2"].steps_per_epoch(streams) == 2


def test_stream_state_restores_the_exact_position():
    streams = fake_streams()
    list(tm2_epoch(streams))
    saved = {task: stream.state_dict() for task, stream in streams.items()}
    expected = list(tm2_epoch(streams))
    restored = fake_streams()
    for task, stream in restored.items():
        stream.load_state_dict(saved[task])
    assert list(tm2_epoch(restored)) == expected


def test_empty_dataset_is_an_error():
    with pytest.raises(ValueError, match="at least one batch"):
        TaskStream(lambda p: [])
