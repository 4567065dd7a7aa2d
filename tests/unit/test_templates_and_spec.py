import pytest

from rerankkit import ConfigError, Reranker, RerankerSpec, TemplateError
from rerankkit.presets import RERANKER_PRESETS, register_presets
from rerankkit.prompts import Template, load_template, template_names
from rerankkit.registry import Registry
from rerankkit.reranker import apply_overrides
from rerankkit.strategies import STRATEGIES


def test_every_packaged_template_validates_against_its_strategy():
    for name in template_names():
        t = load_template(name)
        if t.strategy in STRATEGIES:
            t.validate(STRATEGIES.get(t.strategy).schema)
        assert t.source, f"template {name} must cite its source"


def test_template_errors_are_typed_and_specific():
    schema = STRATEGIES.get("pointwise").schema
    bad = Template.from_dict({"name": "t", "strategy": "pointwise", "user": "{query} {passage}", "choices": {"1": "y"}})
    with pytest.raises(TemplateError, match="passage"):
        bad.validate(schema)
    missing = Template.from_dict({"name": "t", "strategy": "pointwise", "user": "{query}", "choices": {"1": "y"}})
    with pytest.raises(TemplateError, match="doc"):
        missing.validate(schema)
    no_choices = Template.from_dict({"name": "t", "strategy": "pointwise", "user": "{doc}"})
    with pytest.raises(TemplateError, match="choices"):
        no_choices.validate(schema)


def test_render_inserts_values_verbatim():
    t = load_template("yes-no")
    p = t.prompt(query="a {weird} query", doc="doc with {braces}")
    assert "a {weird} query" in p.messages[-1].content and "doc with {braces}" in p.messages[-1].content


def test_every_preset_round_trips_through_toml():
    for name, spec in RERANKER_PRESETS.items():
        again = RerankerSpec.from_toml(spec.to_toml())
        assert again == spec, name
        assert spec.description and spec.paper, f"preset {name} needs description and paper"


def test_overrides_route_to_fields_params_and_backend():
    base = RERANKER_PRESETS.get("pointwise-smollm2-135m")
    s = apply_overrides(base, {"model": "x/y", "max_doc_tokens": "64", "dtype": "bf16", "backend.batch_size": 4})
    assert s.model == "x/y"
    assert s.params["max_doc_tokens"] == "64"
    assert s.backend_options == {"dtype": "bf16", "batch_size": 4}


def test_unknown_strategy_param_is_a_config_error_with_suggestion():
    from rerankkit.backends.fake import OracleBackend

    with pytest.raises(ConfigError, match="max_doc_tokens"):
        Reranker("pointwise-yes-no", backend_instance=OracleBackend({}), **{"params.max_doc_token": 3})


def test_user_presets_file(tmp_path):
    f = tmp_path / "mine.toml"
    f.write_text('[my-ranker]\nstrategy="pointwise"\ntemplate="yes-no"\nbackend="hf"\nmodel="some/model"\n'
                 'description="d"\npaper="p"\n')
    reg: Registry[RerankerSpec] = Registry("reranker preset")
    assert register_presets(f, reg) == ["my-ranker"]
    assert reg.get("my-ranker").model == "some/model"
    bad = tmp_path / "bad.toml"
    bad.write_text('[x]\nstrategy="pointwise"\n')
    with pytest.raises(ConfigError, match="template"):
        register_presets(bad, reg)
