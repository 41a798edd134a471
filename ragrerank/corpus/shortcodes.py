"""Hugo shortcodes → readable text: notes, feature states, glossary terms, includes, code tabs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ragrerank.corpus.site import Site, resolve_include

# ---------------------------------------------------------------------------- Hugo markup

_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)
_COMMENT_SHORTCODE = re.compile(r"\{\{[<%]\s*comment\s*[>%]\}\}.*?\{\{[<%]\s*/comment\s*[>%]\}\}", re.S)
_CODE_SHORTCODE = re.compile(
    r"\{\{<\s*(highlight|mermaid)\b([^>]*?)>\}\}[ \t]*\n?(.*?)\{\{<\s*/\1\s*>\}\}", re.S
)
_CODE_TAB = re.compile(
    r"\{\{<\s*tab\b([^>]*?)\bcodelang=\"([^\"]*)\"([^>]*?)(?<!/)>\}\}[ \t]*\n?(.*?)\{\{<\s*/tab\s*>\}\}", re.S
)
_ESCAPED_SHORTCODE = re.compile(r"\{\{([<%])\s*/\*(.*?)\*/\s*([>%])\}\}", re.S)
_LITERAL_SHORTCODE = re.compile(r"\{\{[<%]\s*(.*?)\s*[>%]\}\}", re.S)
_SHORTCODE = re.compile(r"\{\{([<%])\s*(/?)\s*([\w-]+)(.*?)/?\s*[>%]\}\}", re.S)
_ARG = re.compile(r"""([\w-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|(\S+))|"([^"]*)"|(\S+)""")
LEFTOVER_MARKUP = re.compile(r"\{\{[<%]|<!--")

_HEADINGS = {
    "prerequisites": "Before you begin",
    "whatsnext": "What's next",
    "objectives": "Objectives",
    "cleanup": "Cleaning up",
    "synopsis": "Synopsis",
    "options": "Options",
    "parentoptions": "Options inherited from parent commands",
    "seealso": "See Also",
    "examples": "Examples",
    "envvars": "Environment variables",
}
_CALLOUTS = {"note": "Note", "caution": "Caution", "warning": "Warning"}
_SAMPLES = ("code_sample", "codenew", "code", "example")
_MAX_INCLUDE_DEPTH = 3


@dataclass(frozen=True)
class _Shortcode:
    name: str
    closing: bool
    named: Mapping[str, str]
    positional: tuple[str, ...]


def _parse_args(text: str) -> tuple[dict[str, str], tuple[str, ...]]:
    named: dict[str, str] = {}
    positional: list[str] = []
    for match in _ARG.finditer(text):
        if match[1]:
            named[match[1]] = next(value for value in match.groups()[1:4] if value is not None)
        else:
            positional.append(match[5] if match[5] is not None else match[6])
    return named, tuple(positional)


def render_hugo(text: str, page_path: str, site: Site, depth: int = 0) -> str:
    """Render what Hugo would before markdown: comments, code shortcodes, then the rest.

    Hugo runs shortcodes everywhere, code fences included, so this works on the whole body.
    """
    text = _HTML_COMMENT.sub("", text)
    text = _COMMENT_SHORTCODE.sub("", text)
    text = _ESCAPED_SHORTCODE.sub(_escaped_shortcode, text)
    text = _CODE_SHORTCODE.sub(_code_shortcode, text)
    text = _CODE_TAB.sub(_code_tab, text)
    return _SHORTCODE.sub(lambda match: _shortcode(match, page_path, site, depth), text)


def _escaped_shortcode(match: re.Match[str]) -> str:
    """``{{</* note */>}}`` is how a page shows shortcode syntax; it reads "(shortcode: note)".

    Hugo prints everything between the escapes literally, so shortcodes inside the escaped
    region are written the same way, and no ``{{<`` reaches a passage.
    """
    literal = f"{{{{{match[1]} {match[2].strip()} {match[3]}}}}}"
    return _LITERAL_SHORTCODE.sub(lambda inner: f"(shortcode: {inner[1]})", literal)


def _code_shortcode(match: re.Match[str]) -> str:
    language = "mermaid" if match[1] == "mermaid" else (match[2].split() or [""])[0].strip("\"'")
    return f"\n```{language}\n{match[3].rstrip()}\n```\n"


def _code_tab(match: re.Match[str]) -> str:
    """A tab with ``codelang`` shows its body as code, so it becomes a fenced block."""
    named, _ = _parse_args(match[1] + match[3])
    label = f"\n\n{named['name']}:\n" if named.get("name") else ""
    return f"{label}\n```{match[2]}\n{match[4].rstrip()}\n```\n"


def _shortcode(match: re.Match[str], page_path: str, site: Site, depth: int) -> str:
    named, positional = _parse_args(match[4])
    code = _Shortcode(match[3].lower(), bool(match[2]), named, positional)
    if code.closing:
        return "\n\n" if code.name in _CALLOUTS or code.name in ("alert", "tab", "table") else ""
    if code.name in ("include", "glossary_definition", "feature-gate-description") or (
        code.name == "tab" and "include" in named
    ):
        return _expanded(code, page_path, site, depth)
    return _inline_shortcode(code, site)


def _inline_shortcode(code: _Shortcode, site: Site) -> str:
    """One shortcode → readable text; unknown shortcodes are dropped, their inner text kept."""
    name, named = code.name, code.named
    arg = code.positional[0] if code.positional else ""
    if name in _CALLOUTS:
        return f"\n\n{_CALLOUTS[name]}: "
    if name == "alert":
        return f"\n\n{named.get('title', 'Note')}: "
    if name == "tab":
        return f"\n\n{named.get('name', 'Tab')}:\n\n"
    if name == "table":
        return f"\n\n{named['caption']}:\n\n" if named.get("caption") else "\n\n"
    if name == "glossary_tooltip":
        term = site.glossary.get(named.get("term_id", ""))
        return named.get("text") or (term.title if term else named.get("term_id", "").replace("-", " "))
    if name == "feature-state":
        return _feature_state(named, site)
    if name in _SAMPLES and named.get("file"):
        kind = "manifest" if named["file"].endswith((".yaml", ".yml", ".json")) else "file"
        return f"(example {kind}: {named['file']})"
    if name == "heading":
        return _HEADINGS.get(arg, arg.replace("-", " ").capitalize())
    if name in ("ref", "relref"):
        return arg
    if name == "link":
        return named.get("text", "")
    if name == "figure":
        return named.get("caption") or named.get("title") or ""
    return _version_text(name, arg, code.positional[1:], site)


def _version_text(name: str, arg: str, rest: tuple[str, ...], site: Site) -> str:
    if site.version is None:
        return ""
    major, minor = site.version
    if name == "param" and arg == "version":
        return f"v{major}.{minor}"
    if name != "skew":
        return ""
    offsets = {"currentVersion": 0, "prevMinorVersion": -1, "nextMinorVersion": 1}
    if arg == "currentVersionAddMinor" and rest and re.fullmatch(r"-?\d+", rest[0]):
        return f"{major}.{minor + int(rest[0])}"
    if arg == "currentPatchVersion":
        return f"{major}.{minor}.x"
    return f"{major}.{minor + offsets[arg]}" if arg in offsets else ""


def _feature_state(named: Mapping[str, str], site: Site) -> str:
    gate_name = named.get("feature_gate_name")
    if gate_name:
        gate = site.gates.get(gate_name)
        if gate is None:
            return f"\n\nFEATURE STATE: feature gate {gate_name}\n\n"
        default = "true" if gate.default else "false"
        return f"\n\nFEATURE STATE: Kubernetes v{gate.since} [{gate.stage}] (enabled by default: {default})\n\n"
    version = named.get("for_k8s_version") or (f"v{site.version[0]}.{site.version[1]}" if site.version else "")
    version = f" {version}" if version else ""
    return f"\n\nFEATURE STATE: Kubernetes{version} [{named.get('state', 'unknown')}]\n\n"


def _expanded(code: _Shortcode, page_path: str, site: Site, depth: int) -> str:
    """Inline another file's markdown (includes, glossary definitions, gate descriptions)."""
    if depth >= _MAX_INCLUDE_DEPTH:
        return ""
    named = code.named
    if code.name == "glossary_definition":
        term = site.glossary.get(named.get("term_id", ""))
        if term is None:
            return named.get("term_id", "").replace("-", " ")
        body = term.full if named.get("length") == "all" else term.short
        prepend = named.get("prepend", "")
        body = f"{prepend} {body[:1].lower()}{body[1:]}" if prepend else body
        return render_hugo(body, page_path, site, depth + 1)
    if code.name == "feature-gate-description":
        gate = site.gates.get(named.get("name", ""))
        return f"{named.get('name', '')}: {render_hugo(gate.body, page_path, site, depth + 1)}" if gate else ""
    target = named.get("include") or (code.positional[0] if code.positional else "")
    label = f"\n\n{named['name']}:\n\n" if code.name == "tab" and named.get("name") else ""
    page = resolve_include(site, page_path, target) if target else None
    return label + (f"\n\n{render_hugo(page.body, page.path, site, depth + 1)}\n\n" if page else "")
