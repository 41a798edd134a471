"""Each resolution path: local folder, packaged offline copy, trained artifact, clear error."""

from pathlib import Path

import pytest

from ragrerank.config import DEFAULT_BI_ENCODER, DEFAULT_CROSS_ENCODER, DEFAULT_LLM, DEFAULT_SPAN_SCORER
from ragrerank.errors import RagrerankError
from ragrerank.models import (
    CROSS_ENCODER_DIRNAME,
    load_bi_encoder,
    load_cross_encoder,
    resolve_model,
)


@pytest.fixture()
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_packaged_bi_encoder_resolves_offline_and_embeds(tmp_settings, offline):
    source = resolve_model("bi-encoder", DEFAULT_BI_ENCODER, tmp_settings)
    assert source.origin == "packaged offline copy"
    model = load_bi_encoder(DEFAULT_BI_ENCODER, tmp_settings)
    assert model.encode(["a pod is a group of containers"]).shape == (1, 384)


def test_packaged_llm_is_found_without_importing_its_package(tmp_settings, offline):
    source = resolve_model("llm", DEFAULT_LLM, tmp_settings)
    assert source.origin == "packaged offline copy"
    assert source.gguf_file is not None and source.gguf_file.endswith(".gguf")
    assert (Path(source.location) / source.gguf_file).is_file()


def test_local_folder_is_used_as_is(tmp_settings, offline):
    packaged = resolve_model("bi-encoder", DEFAULT_BI_ENCODER, tmp_settings).location
    source = resolve_model("bi-encoder", packaged, tmp_settings)
    assert source.origin == "local folder"


def test_trained_cross_encoder_artifact_is_picked_up(tmp_settings, offline):
    from sentence_transformers import CrossEncoder

    backbone = resolve_model("bi-encoder", DEFAULT_BI_ENCODER, tmp_settings).location
    CrossEncoder(backbone, num_labels=1).save(str(tmp_settings.models_dir / CROSS_ENCODER_DIRNAME))
    source = resolve_model("cross-encoder", DEFAULT_CROSS_ENCODER, tmp_settings)
    assert source.origin == "trained artifact"
    model = load_cross_encoder(DEFAULT_CROSS_ENCODER, tmp_settings)
    assert model.predict([("what is a pod", "A Pod is a group of containers.")]).shape == (1,)


def test_hub_name_offline_fails_fast_with_the_fix(tmp_settings, offline):
    with pytest.raises(RagrerankError, match=r"not available offline.*ragrerank finetune"):
        resolve_model("cross-encoder", "cross-encoder/some-model-that-is-not-cached", tmp_settings)


def test_unknown_name_is_refused(tmp_settings):
    with pytest.raises(RagrerankError, match="unknown bi-encoder 'no-such-model'"):
        resolve_model("bi-encoder", "no-such-model", tmp_settings)


def test_folder_that_is_not_a_model_is_refused(tmp_settings, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(RagrerankError, match="is not a model: it has no config.json"):
        resolve_model("cross-encoder", str(tmp_path), tmp_settings)


def test_llm_folder_without_gguf_or_config_is_refused(tmp_settings, tmp_path):
    with pytest.raises(RagrerankError, match="no config.json or .gguf"):
        resolve_model("llm", str(tmp_path), tmp_settings)


def test_missing_project_cross_encoder_says_how_to_build_it(tmp_settings, monkeypatch, tmp_path):
    monkeypatch.setattr("ragrerank.models.SHIPPED_CROSS_ENCODER", tmp_path / "none")
    with pytest.raises(RagrerankError, match="ragrerank finetune"):
        resolve_model("cross-encoder", DEFAULT_CROSS_ENCODER, tmp_settings)


def test_missing_project_span_scorer_says_how_to_get_it(tmp_settings, monkeypatch, tmp_path):
    monkeypatch.setattr("ragrerank.models.SHIPPED_SPAN_SCORER", tmp_path / "none")
    with pytest.raises(RagrerankError, match="span-scorer .* is not built yet.*git checkout -- data/models"):
        resolve_model("span-scorer", DEFAULT_SPAN_SCORER, tmp_settings)


def test_span_scorer_name_is_not_a_cross_encoder_name(tmp_settings):
    with pytest.raises(RagrerankError, match="unknown cross-encoder"):
        resolve_model("cross-encoder", DEFAULT_SPAN_SCORER, tmp_settings)
