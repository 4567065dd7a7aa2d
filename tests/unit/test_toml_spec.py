"""The shared TOML spec base and preset-file loader, through both spec kinds that use them."""

from __future__ import annotations

import pytest

from rerankkit import ConfigError, RerankerSpec
from rerankkit._toml_spec import load_preset_files, register_preset_file
from rerankkit.registry import Registry
from rerankkit.retrievers import RetrieverSpec

SPECS = [
    (RerankerSpec, {"strategy": "pointwise", "template": "yes-no", "backend": "hf"}, "backend_options"),
    (RetrieverSpec, {"engine": "bm25s"}, "params"),
]


@pytest.mark.parametrize(("cls", "minimal", "table"), SPECS)
def test_from_dict_errors_name_the_spec(cls, minimal, table):
    kind = cls._KIND
    with pytest.raises(ConfigError, match=rf"{kind} spec 'x': unknown field\(s\) \['colour'\]"):
        cls.from_dict({**minimal, "colour": "red"}, name="x")
    first = cls._REQUIRED[0]
    with pytest.raises(ConfigError, match=rf"{kind} spec 'y': missing '{first}'"):
        cls.from_dict({k: v for k, v in minimal.items() if k != first}, name="y")
    with pytest.raises(ConfigError, match=rf"{kind} spec 'z': '{table}' must be a table"):
        cls.from_dict({**minimal, "name": "z", table: "not a table"})


@pytest.mark.parametrize(("cls", "minimal", "table"), SPECS)
def test_save_load_replace_round_trip(tmp_path, cls, minimal, table):
    spec = cls.from_dict({**minimal, table: {"k": 1, "dropped": None}, "description": 7}, name="mine")
    assert spec.name == "mine" and spec.description == "7"  # string fields are read as strings
    back = cls.load(spec.save(tmp_path / "s.toml"))
    assert type(back) is cls and getattr(back, table) == {"k": 1}  # TOML has no null: None is dropped
    assert back == spec.replace(**{table: {"k": 1}})
    assert list(back.to_dict())[-1] in cls._TABLES and "paper" not in back.to_dict()  # empty strings left out
    with pytest.raises(ConfigError, match="not valid TOML"):
        cls.from_toml("engine = ")


def test_preset_files_register_aliases_and_env_paths(tmp_path, monkeypatch):
    (tmp_path / "b.toml").write_text('[second]\nengine = "bm25s"\n')
    (tmp_path / "a.toml").write_text('[first]\nengine = "dense"\naliases = ["one"]\n')
    extra = tmp_path / "extra" / "c.toml"
    extra.parent.mkdir()
    extra.write_text('[third]\nengine = "lucene"\n')
    monkeypatch.setenv("MY_PRESETS", f"{extra}")
    reg: Registry[RetrieverSpec] = Registry("retriever preset")
    seen: list[list[str]] = []
    load_preset_files(tmp_path, "MY_PRESETS",
                      lambda p: seen.append(register_preset_file(p, reg, RetrieverSpec.from_dict, "test file")))
    assert seen == [["first"], ["second"], ["third"]]  # folder files sorted, then the environment's
    assert reg.get("one").engine == "dense" and reg.get("third").name == "third"
    (tmp_path / "bad.toml").write_text("first = 3\n")
    with pytest.raises(ConfigError, match="'first' must be a table of preset fields"):
        register_preset_file(tmp_path / "bad.toml", reg, RetrieverSpec.from_dict, "test file")
    with pytest.raises(ConfigError, match="cannot read test file"):
        register_preset_file(tmp_path / "missing.toml", reg, RetrieverSpec.from_dict, "test file")
