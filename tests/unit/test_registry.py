import pytest

from rerankkit.errors import DuplicateNameError, UnknownNameError
from rerankkit.registry import Registry


def test_exact_alias_and_did_you_mean():
    reg: Registry[int] = Registry("thing")
    reg.register("pointwise-smollm2", 1, aliases=("pw-smol",))
    assert reg.get("pointwise-smollm2") == 1
    assert reg.get("pw-smol") == 1
    with pytest.raises(UnknownNameError) as err:
        reg.get("pointwise-smolm2")
    assert err.value.suggestions[0] == "pointwise-smollm2"
    assert "did you mean" in str(err.value)
    with pytest.raises(UnknownNameError):
        reg.get("smollm2")  # never guessed from a substring


def test_duplicates_are_errors():
    reg: Registry[int] = Registry("thing")
    reg.register("a", 1, aliases=("b",))
    with pytest.raises(DuplicateNameError):
        reg.register("a", 2)
    with pytest.raises(DuplicateNameError):
        reg.register("c", 3, aliases=("b",))
