"""The README says what minbert_lib/__init__.py's map of the library says."""
import re
from pathlib import Path

import minbert_lib

ROOT = Path(__file__).resolve().parent.parent
NUMBERS = {3: "three", 4: "four", 5: "five", 6: "six", 7: "seven"}


def test_the_readme_names_the_layers_of_the_librarys_map():
    map_text = minbert_lib.__doc__.split("Which modules")[0]
    layers = re.findall(r"^    (\w+) {2,}\S", map_text, flags=re.MULTILINE)
    assert layers[0] == "model" and layers[-1] == "course"  # the pattern still finds the map
    assert f"in {NUMBERS[len(layers)]} layers ({', '.join(layers)})" in (ROOT / "README.md").read_text()
