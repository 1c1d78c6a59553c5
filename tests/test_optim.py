"""The kit's AdamW against torch.optim.AdamW, and against Adam with L2 regularisation."""
import pytest
import torch

from minbert_lib.optim import AdamW


def regression_problem(seed=0):
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(64, 10, generator=generator)
    y = X @ torch.randn(10, 1, generator=generator) + 0.1 * torch.randn(64, 1, generator=generator)
    model = torch.nn.Linear(10, 1)
    with torch.no_grad():
        model.weight.copy_(torch.randn(1, 10, generator=generator))
        model.bias.fill_(0.5)
    return X, y, model


def train(optimizer_factory, steps=200, seed=0):
    X, y, model = regression_problem(seed)
    optimizer = optimizer_factory(model.parameters())
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(X), y).backward()
        optimizer.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.mark.parametrize("weight_decay", [0.01, 0.1])
def test_matches_torch_adamw_over_200_steps(weight_decay):
    kwargs = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay)
    ours = train(lambda params: AdamW(params, **kwargs))
    theirs = train(lambda params: torch.optim.AdamW(params, **kwargs))
    assert (ours - theirs).abs().max().item() <= 1e-6


def test_the_trainers_fused_adamw_takes_the_same_steps_as_the_kits():
    """The trainer's fast path (torch's fused AdamW) must not change what is learned."""
    kwargs = dict(lr=1e-2, weight_decay=0.01)
    ours = train(lambda params: AdamW(params, **kwargs))
    fused = train(lambda params: torch.optim.AdamW(params, fused=True, **kwargs))
    assert (ours - fused).abs().max().item() <= 1e-6


def test_differs_from_adam_with_l2():
    ours = train(lambda params: AdamW(params, lr=1e-2, weight_decay=0.1))
    l2 = train(lambda params: torch.optim.Adam(params, lr=1e-2, weight_decay=0.1))
    assert (ours - l2).abs().max().item() > 1e-3


def test_bias_correction_makes_the_first_step_about_lr():
    # m_hat = g and v_hat = g^2 after one step, so each weight moves by lr * g / |g|; without the
    # correction it would move by lr * (1 - beta1) / sqrt(1 - beta2), about 3.2 lr
    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(50))
    start = weight.detach().clone()
    optimizer = AdamW([weight], lr=1e-2, weight_decay=0.0)
    weight.grad = torch.randn(50)
    optimizer.step()
    assert torch.allclose((weight.detach() - start).abs(), torch.full((50,), 1e-2), rtol=1e-4)


def test_rejects_bad_hyperparameters():
    with pytest.raises(ValueError, match="betas"):
        AdamW([torch.nn.Parameter(torch.zeros(1))], betas=(1.0, 0.999))
