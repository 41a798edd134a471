"""The `ragrerank` command: a thin layer over the package; every error is one line, exit 2."""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, get_args

from ragrerank.config import Settings, resolve_settings
from ragrerank.errors import RagrerankError
from ragrerank.finetune import BUDGETS, WRITTEN_QUESTIONS, Recipe
from ragrerank.rerank.runtime import RUNTIMES, auto_runtime
from ragrerank.types import Hit

if TYPE_CHECKING:
    from ragrerank.answer import LLM, Answer
    from ragrerank.retrieval import Retriever

Command = Callable[[argparse.Namespace, Settings], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = replace(
            resolve_settings(docs=args.docs, home=args.home).with_models(
                bi_encoder=args.bi_encoder, cross_encoder=args.cross_encoder, span_scorer=args.span_scorer, llm=args.llm
            ),
            runtime=_runtime(args),
        )
        return args.command(args, settings)
    except RagrerankError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: earlier artifacts are left as they were", file=sys.stderr)
        return 130


def _runtime(args: argparse.Namespace) -> str:
    """``--runtime``, or the deprecated ``--rerank-mode`` it replaced (one release, with a warning).

    ``ask`` defaults to ``auto`` (bf16 where the CPU computes it natively: a user waits on it);
    everything that measures defaults to fp32, so figures are the same on every machine.
    """
    if args.rerank_mode is None:
        runtime = args.runtime or ("auto" if args.command is _ask else "torch")
        return auto_runtime() if runtime == "auto" else runtime
    if args.runtime is not None and args.runtime != args.rerank_mode:
        raise RagrerankError(f"--runtime {args.runtime} and --rerank-mode {args.rerank_mode} disagree: pass --runtime only")
    print("warning: --rerank-mode is deprecated and will be removed in the next release: use --runtime", file=sys.stderr)
    return args.rerank_mode


def _doctor(args: argparse.Namespace, settings: Settings) -> int:
    from ragrerank.doctor import run_checks, versions

    if args.workshop:
        from ragrerank.series.workshop import format_checks, workshop_checks

        print(f"workshop check: artifacts in {settings.home}")
        checks = workshop_checks(settings)
        print(format_checks(checks, color=sys.stdout.isatty()))
        return 0 if all(check.ok for check in checks) else 1
    print(versions())
    print(f"artifacts: {settings.home}")
    checks = run_checks(settings)
    for check in checks:
        print(f"  {check.status:<9} {check.name:<13} {check.detail}")
    failed = [check for check in checks if check.status == "missing"]
    if failed:
        print(f"doctor: {len(failed)} problem(s); first: {failed[0].detail}", file=sys.stderr)
        return 1
    return 0


def _passages(args: argparse.Namespace, settings: Settings) -> int:
    from ragrerank.corpus import build_passages

    report = build_passages(settings, out=Path(args.out) if args.out else None)
    print(report.summary())
    return 0


def _index(args: argparse.Namespace, settings: Settings) -> int:
    from ragrerank.models import load_bi_encoder
    from ragrerank.retrieval import build_index

    model = load_bi_encoder(settings.bi_encoder, settings)
    print(build_index(settings, model, kind=args.kind, force=args.force))
    if args.store == "milvus":
        from ragrerank.retrieval.milvus_build import build_milvus

        print(build_milvus(settings, model, args.milvus_uri, _milvus_token(), force=args.force))
    return 0


def _first_stage(args: argparse.Namespace, settings: Settings) -> Retriever:
    """The first-stage retriever of ``--mode`` on ``--store`` (FAISS in process, or Milvus)."""
    from ragrerank.retrieval import open_retriever

    return open_retriever(settings, args.mode, store=args.store, milvus_uri=args.milvus_uri, milvus_token=_milvus_token())


def _milvus_token() -> str:
    """A Milvus server token comes from the environment, so it stays out of shell history."""
    return os.environ.get("MILVUS_TOKEN", "")


def _search(args: argparse.Namespace, settings: Settings) -> int:
    from ragrerank.evaluate.questions import load_queries
    from ragrerank.retrieval import search_queries

    if (args.query is None) == (args.queries is None):
        raise RagrerankError("search needs either a QUERY or --queries FILE.jsonl (not both)")
    queries = load_queries(args.queries) if args.queries is not None else ()  # a bad file fails before models load
    retriever = _first_stage(args, settings)
    if args.rerank:
        from ragrerank.rerank import Reranker, RerankingRetriever

        retriever = RerankingRetriever(retriever, Reranker.from_settings(settings), args.candidates)
    if args.queries is not None:
        for record in search_queries(retriever, queries, args.k):
            print(json.dumps(record, ensure_ascii=False))
        return 0
    hits = retriever.search(args.query, args.k)
    if args.json:
        print(json.dumps({"query": args.query, "results": [hit.to_json() for hit in hits]}, ensure_ascii=False))
    else:
        print(format_hits(hits))
    return 0


def _ask(args: argparse.Namespace, settings: Settings) -> int:
    from ragrerank.answer import AnswerSettings, Thresholds, answer
    from ragrerank.rerank import Reranker
    from ragrerank.retrieval import open_retriever

    if args.no_llm:
        print("warning: --no-llm is deprecated: answers are extractive unless --generate is given", file=sys.stderr)
    first_stage = _first_stage(args, settings)
    fallback = open_retriever(settings, "bm25")
    reranker = Reranker.from_settings(settings)
    thresholds = Thresholds(**{name: value for name, value in (("answer", args.threshold), ("coverage", args.coverage)) if value is not None})
    answer_settings = AnswerSettings(candidates=args.candidates, thresholds=thresholds, generate=args.generate)
    result = answer(
        args.question, first_stage, fallback, reranker, _llm_loader(settings, answer_settings.max_new_tokens), answer_settings,
        on_token=None if args.json else _streamer("draft (checked before it is shown): "),
    )
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        print(format_answer(result))
    if result.generation_error:
        print(f"error: {result.generation_error}", file=sys.stderr)
        return 2
    return 0


def _llm_loader(settings: Settings, max_new_tokens: int) -> Callable[[], LLM]:
    """Loads the chat LLM when ``answer()`` first needs it (never for an extractive or refused answer), once."""

    @functools.cache
    def load() -> LLM:
        from ragrerank.answer import LLM
        from ragrerank.models import load_llm

        return LLM(*load_llm(settings.llm, settings), max_new_tokens=max_new_tokens)

    return load


def format_answer(result: Answer) -> str:
    """What `ask` prints: the answer, notes, the decision, the citations and the reranking."""
    lines = [f"answer ({result.source}):" if result.source != "none" else "answer:", result.answer, ""]
    lines += [f"note: {note}" for note in result.notes]
    if result.grounding is not None and result.grounding.passed:
        lines.append(result.grounding.summary())
    lines.append(f"decision: {result.decision}")
    lines.append("citations:" if result.decision != "not_covered" else "closest pages:")
    lines += [f"  [{number}] {citation.title} — {citation.url}" for number, citation in enumerate(result.citations, start=1)]
    lines.append("candidates (after reranking ← before):")
    for hit in result.candidates[:10]:
        before = int(hit.scores["first_stage_rank"])
        lines.append(f"  {hit.rank:>3} ← {before:<3} p={hit.scores['ce_prob']:.3f}  {hit.passage.path}")
    lines.append("timings: " + ", ".join(f"{stage} {seconds:.2f} s" for stage, seconds in result.timings.items()))
    return "\n".join(lines)


def _finetune(args: argparse.Namespace, settings: Settings) -> int:
    from ragrerank.finetune import finetune

    questions = None if args.generated else Path(args.questions)
    checkpoint = Path(args.checkpoint) if args.checkpoint else None
    report = finetune(
        settings, budget=args.budget, base=args.base, device=args.device, recipe=args.recipe, questions=questions,
        checkpoint=checkpoint, out=Path(args.out) if args.out else None,
    )
    print(f"model: {report.model_dir} (fusion weight {report.fusion_weight:g})")
    for name in ("first_stage_MRR@10", "pure_MRR@10", "fused_MRR@10"):
        if name in report.validation:
            print(f"  {name}: {report.validation[name]:.3f}")
    return 0


def _eval(args: argparse.Namespace, settings: Settings) -> int:
    from ragrerank.evaluate import format_report, run_eval

    if args.answers or args.generate:
        return _eval_answers(args, settings)
    report = run_eval(
        settings, Path(args.queries), args.configs, progress=not args.json,
        store=args.store, milvus_uri=args.milvus_uri, milvus_token=_milvus_token(),
    )
    print(json.dumps(report.to_json(), ensure_ascii=False) if args.json else format_report(report))
    return 0


def _eval_answers(args: argparse.Namespace, settings: Settings) -> int:
    """``eval --answers``: every question through ``answer()``, scored as a reader would see it."""
    from ragrerank.answer import AnswerSettings
    from ragrerank.evaluate.answers import evaluate_answers, format_answer_report
    from ragrerank.evaluate.questions import load_questions
    from ragrerank.rerank import Reranker
    from ragrerank.retrieval import open_retriever

    questions = load_questions(args.queries)
    answer_settings = AnswerSettings(generate=args.generate)
    report = evaluate_answers(
        questions, _first_stage(args, settings), open_retriever(settings, "bm25"), Reranker.from_settings(settings),
        answer_settings, _llm_loader(settings, answer_settings.max_new_tokens) if args.generate else None,
        source=args.queries, progress=not args.json,
    )
    print(json.dumps(report.to_json(), ensure_ascii=False) if args.json else format_answer_report(report))
    return 0


def _streamer(prefix: str) -> Callable[[str], None]:
    """Print generated text as it arrives, after a prefix printed only if generation starts."""
    started = False

    def write(text: str) -> None:
        nonlocal started
        if not started:
            print(prefix, end="")
            started = True
        print(text, end="", flush=True)

    return write


def format_hits(hits: Sequence[Hit]) -> str:
    """A compact table: rank, the scores each stage gave, and where the passage comes from."""
    lines = []
    for hit in hits:
        scores = "  ".join(f"{name}={value:.4f}" for name, value in hit.scores.items() if name != "first_stage_rank")
        heading = " > ".join(hit.passage.heading)
        lines.append(f"{hit.rank:>3}. {scores}\n     {hit.passage.path}" + (f"  [{heading}]" if heading else ""))
    return "\n".join(lines) if lines else "(no results)"


def _parser() -> argparse.ArgumentParser:
    """Every command and flag in one place, one line each: long, but read like the help it prints."""
    parser = argparse.ArgumentParser(prog="ragrerank", description=__doc__)
    parser.add_argument("--docs", help="folder that holds website/ (default: $DOCS_HOME_FOLDER or $BASE_FOLDER)")
    parser.add_argument("--home", help="artifacts folder (default: $RAGRERANK_HOME or artifacts/)")
    parser.add_argument("--bi-encoder", help="bi-encoder name or folder")
    parser.add_argument("--cross-encoder", help="cross-encoder name or folder")
    parser.add_argument("--span-scorer", help="cross-encoder that picks the sentences of extractive answers (name or folder)")
    parser.add_argument("--llm", help="chat LLM name or folder")
    parser.add_argument(
        "--runtime", choices=[*RUNTIMES, "auto"], default=None,
        help="how the cross-encoder runs: torch (fp32, exact; the default), torch-bf16 (about 3x faster on CPUs with AMX), "
        "onnx, onnx-int8, auto (torch-bf16 where the CPU has native bf16, else torch; the default of ask)",
    )
    parser.add_argument("--rerank-mode", choices=RUNTIMES, help=argparse.SUPPRESS)  # the old name of --runtime
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument("--store", choices=["faiss", "milvus"], default="faiss", help="where dense vectors are searched")
    store.add_argument(
        "--milvus-uri", help="a Milvus Lite *.db path or a server address; default milvus.db in the artifacts folder"
    )

    doctor = commands.add_parser("doctor", help="show versions, docs, models and artifacts; exit 1 if something is missing")
    doctor.add_argument(
        "--workshop", action="store_true", help="green/red readiness list for running the series offline, with a fix per red line"
    )
    doctor.set_defaults(command=_doctor)

    passages = commands.add_parser("passages", help="extract clean, citable passages from the docs")
    passages.add_argument("--out", help="output JSONL (default: passages.jsonl in the artifacts folder)")
    passages.set_defaults(command=_passages)

    index = commands.add_parser("index", parents=[store], help="embed the passages and build the FAISS and BM25 indexes")
    index.add_argument("--kind", choices=["flat", "hnsw"], default="flat", help="exact (flat) or approximate (hnsw) dense index")
    index.add_argument("--force", action="store_true", help="rebuild even when the index is up to date")
    index.set_defaults(command=_index)

    search = commands.add_parser("search", parents=[store], help="retrieve passages for a question (or a JSONL file of questions)")
    search.add_argument("query", nargs="?", help="the question")
    search.add_argument("--queries", help="JSONL file with one {\"id\", \"query\"} per line; prints one JSON line per query")
    search.add_argument("--k", type=int, default=10, help="results to return")
    search.add_argument("--mode", choices=["dense", "bm25", "hybrid"], default="hybrid")
    search.add_argument("--json", action="store_true", help="print JSON instead of a table")
    search.add_argument("--rerank", action="store_true", help="rerank the first-stage candidates with the cross-encoder")
    search.add_argument("--candidates", type=int, default=30, help="first-stage candidates to rerank")
    search.set_defaults(command=_search)

    finetune = commands.add_parser("finetune", help="train the project's cross-encoder on hand-written questions (offline)")
    finetune.add_argument(
        "--budget", choices=list(BUDGETS), default="quick",
        help="quick: a dozen steps (CI, notebook 04); cpu: an hour in the background on 2 cores; full: a GPU",
    )
    finetune.add_argument("--base", help="start from this model (default: the project's model, else all-MiniLM-L6-v2)")
    finetune.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    finetune.add_argument("--recipe", choices=list(get_args(Recipe)), default="listwise")
    finetune.add_argument("--questions", default=str(WRITTEN_QUESTIONS), help="hand-written training questions (JSONL)")
    finetune.add_argument("--generated", action="store_true", help="train on questions generated from the docs instead")
    finetune.add_argument("--checkpoint", help="save the run's state here at every check, and resume from it if it exists")
    finetune.add_argument("--out", help="model folder (default: models/k8s-cross-encoder in the artifacts folder)")
    finetune.set_defaults(command=_finetune)

    evaluate = commands.add_parser("eval", parents=[store], help="measure retrieval and reranking configs on a questions file")
    evaluate.add_argument("--queries", required=True, help="JSONL questions with gold_files (e.g. data/eval/k8s_questions.jsonl)")
    evaluate.add_argument(
        "--configs",
        default="dense,bm25,hybrid,dense+rerank,bm25+rerank,hybrid+rerank",
        help="comma-separated MODE[+rerank|+ce|+ql|+qlfused][@CANDIDATES]: +rerank reranks with the model as shipped "
        "(fused by its fitted weight), +ce by the cross-encoder alone, +ql by the LLM's query likelihood alone, "
        "+qlfused by it and the first stage at equal weight (slow: ~0.2 s a pair); e.g. hybrid@30,hybrid+rerank@30,hybrid+ce@30",
    )
    evaluate.add_argument(
        "--answers", action="store_true",
        help="answer every question as `ask` does and report decisions, evidence in the answer and verbatim extracts",
    )
    evaluate.add_argument("--generate", action="store_true", help="with --answers: let the LLM answer, and report the grounding check's pass rate")
    evaluate.add_argument("--mode", choices=["dense", "bm25", "hybrid"], default="hybrid", help="with --answers: first-stage retrieval")
    evaluate.add_argument("--json", action="store_true", help="print the report as JSON")
    evaluate.set_defaults(command=_eval)

    ask = commands.add_parser("ask", parents=[store], help="answer a question from the docs with citations, or say they do not cover it")
    ask.add_argument("question")
    ask.add_argument("--mode", choices=["dense", "bm25", "hybrid"], default="hybrid", help="first-stage retrieval")
    ask.add_argument("--candidates", type=int, default=30, help="first-stage candidates to rerank")
    ask.add_argument("--threshold", type=float, help="cross-encoder probability the best passage needs (default: calibrated)")
    ask.add_argument("--coverage", type=float, help="bi-encoder cosine below which the docs do not cover it (default: calibrated)")
    ask.add_argument(
        "--generate", action="store_true",
        help="let the LLM (--llm) write the answer; shown only if every command, flag, field and URL it names is in the cited passages",
    )
    ask.add_argument("--no-llm", action="store_true", help=argparse.SUPPRESS)  # the default since answers are extractive
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    ask.set_defaults(command=_ask)
    return parser


if __name__ == "__main__":
    sys.exit(main())
