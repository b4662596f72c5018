"""Generate ``docs/api.md``, the reference of natexp's public API, from the docstrings.

Every name in ``natexp.__all__`` gets its call signature (defaults as written in the source) and
its numpydoc sections (parsed with numpydoc's own ``docscrape``, so the layout follows the
numpydoc standard rather than a parser of ours), grouped by what it is for, in the order of
``natexp._API``. The Markdown is committed; ``tests/test_public_api.py`` checks that it matches
this script's output, so a changed docstring means rerunning the script.

Usage::

    python docs/gen_api.py            # rewrite docs/api.md
    python docs/gen_api.py --check    # exit status 1 when docs/api.md is out of date
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
import textwrap
from pathlib import Path

from numpydoc.docscrape import ClassDoc, NumpyDocString

OUT = Path(__file__).resolve().parent / "api.md"
#: Longest signature line before it is broken into one parameter per line.
WIDTH = 96

#: (title, intro, modules): a public name goes to the first section listing its module.
SECTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Configuration and whole runs",
     "Compose a configuration with Hydra overrides and run an experiment, exactly as "
     "`python -m natexp run` does.",
     ("natexp.config", "natexp.pipeline")),
    ("Data: inputs, rollout schedule, cohorts",
     "The polars layer: load and validate the input tables, read the rollout schedule, assign "
     "families to arms under a design and account for every exclusion.",
     ("natexp.data.",)),
    ("Estimation",
     "Every estimate and test returns an immutable `Result` (or a container of them) that "
     "displays in Jupyter.",
     ("natexp.causal.result", "natexp.causal.twobytwo", "natexp.causal.balance",
      "natexp.causal.power", "natexp.causal.staggered")),
    ("Sensitivity analyses",
     "How much would it take to change the answer: non-response, unmeasured confounding, "
     "which areas went live first, placebo go-live dates, single areas, the causal graph.",
     ("natexp.causal.sensitivity", "natexp.causal.randomization",
      "natexp.causal.dowhy_model")),
    ("Figures",
     "plotnine figures: each returns a `plotnine.ggplot`, which displays inline in Jupyter; "
     "`save_png` writes it reproducibly.",
     ("natexp.report.figures",)),
    ("Published numbers",
     "The numbers a study published and the check of a run against them.",
     ("natexp.experiments",)),
)

#: numpydoc sections rendered as lists of (name, type, description).
_LISTS = ("Parameters", "Attributes", "Returns", "Yields", "Other Parameters", "Raises",
          "Warns", "Methods")
#: numpydoc sections rendered as text.
_TEXT = ("Warnings", "Notes", "References")


# --------------------------------------------------------------------------- docstring text


_ROLE = re.compile(r":(?:py:)?(?:func|meth|class|mod|attr|data|obj|exc|ref):`(~?)([^`]+)`")


def _role(match: re.Match) -> str:
    target = match.group(2)
    if match.group(1) == "~":
        target = target.rsplit(".", 1)[-1]
    return f"`{target}`"


def md(text: str) -> str:
    """reStructuredText inline markup of the docstrings, as Markdown."""
    text = _ROLE.sub(_role, text)
    text = re.sub(r"``([^`]+)``", r"`\1`", text)
    # "text::" introduces a literal block: keep one colon (or none after a space)
    text = re.sub(r" ::$", "", text, flags=re.M)
    return re.sub(r"::$", ":", text, flags=re.M)


def paragraphs(lines: list[str]) -> str:
    """Description lines as Markdown; indented blocks (literal blocks) become code."""
    out: list[str] = []
    block: list[str] = []

    def flush() -> None:
        if block:
            out.extend(["", "```text", *textwrap.dedent("\n".join(block)).splitlines(), "```",
                        ""])
            block.clear()

    for i, line in enumerate(lines):
        prev_blank = i == 0 or not lines[i - 1].strip() or block
        if line.startswith("    ") and prev_blank and not _is_list_item(lines, i):
            block.append(line)
            continue
        if block and not line.strip():
            block.append(line)
            continue
        flush()
        out.append(md(line))
    flush()
    return "\n".join(out).strip("\n")


def _is_list_item(lines: list[str], i: int) -> bool:
    """An indented continuation of a bullet ("* x" / "- x") is not a literal block."""
    for prev in reversed(lines[:i]):
        if not prev.strip():
            return False
        if re.match(r"\s*[*-] ", prev):
            return True
    return False


def examples(lines: list[str]) -> str:
    """The Examples section: doctest paragraphs as ``pycon`` code, prose as text."""
    out: list[str] = []
    para: list[str] = []

    def flush() -> None:
        if not para:
            return
        if para[0].lstrip().startswith(">>>"):
            out.extend(["```pycon", *para, "```"])
        else:
            out.append(md(" ".join(s.strip() for s in para)))
        out.append("")
        para.clear()

    for line in lines:
        if line.strip():
            para.append(line)
        else:
            flush()
    flush()
    return "\n".join(out).strip("\n")


def item_list(items, *, section: str) -> str:
    rows = []
    for p in items:
        name, typ, desc = p.name.strip(), p.type.strip(), p.desc
        if section in ("Returns", "Yields", "Raises", "Warns") and not (name and typ):
            head = f"- *{md(typ or name)}*"  # numpydoc puts a bare type in one or the other
        else:
            head = f"- **{md(name)}**" + (f" : *{md(typ)}*" if typ else "")
        text = paragraphs(list(desc))
        rows.append(head + ("\n" + textwrap.indent(text, "  ") if text else ""))
    return "\n".join(rows)


# --------------------------------------------------------------------------- signatures


def _source_defaults(obj) -> dict[str, str]:
    """Default values as written in the source (``DEFAULT_ROLLOUT``, not a machine's path)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(obj)))
    except (OSError, TypeError, SyntaxError):
        return {}
    fn = next((n for n in ast.walk(tree)
               if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)), None)
    if fn is None or fn.name != obj.__name__:
        return {}
    args = fn.args
    positional = [*args.posonlyargs, *args.args]
    out = {a.arg: ast.unparse(d)
           for a, d in zip(positional[len(positional) - len(args.defaults):], args.defaults,
                           strict=True)}
    out.update({a.arg: ast.unparse(d) for a, d in zip(args.kwonlyargs, args.kw_defaults,
                                                       strict=True) if d is not None})
    return out


def signature(name: str, obj) -> str:
    """``natexp.name(params)`` without annotations (the Parameters section gives the types)."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return f"natexp.{name}"
    written = _source_defaults(obj) if inspect.isfunction(obj) else {}
    parts: list[str] = []
    star_done = False
    params = list(sig.parameters.values())
    for i, p in enumerate(params):
        if p.kind is p.KEYWORD_ONLY and not star_done:
            parts.append("*")
            star_done = True
        if p.kind is p.VAR_POSITIONAL:
            star_done = True
            parts.append(f"*{p.name}")
        elif p.kind is p.VAR_KEYWORD:
            parts.append(f"**{p.name}")
        elif p.default is p.empty:
            parts.append(p.name)
        else:
            value = written.get(p.name) or re.sub(r" at 0x[0-9a-fA-F]+", "", repr(p.default))
            parts.append(f"{p.name}={value}")
        if p.kind is p.POSITIONAL_ONLY and (
                i + 1 == len(params) or params[i + 1].kind is not p.POSITIONAL_ONLY):
            parts.append("/")
    one_line = f"natexp.{name}({', '.join(parts)})"
    if len(one_line) <= WIDTH:
        return one_line
    return f"natexp.{name}(\n" + "".join(f"    {s},\n" for s in parts) + ")"


# --------------------------------------------------------------------------- one entry


def parse(obj) -> NumpyDocString:
    doc = inspect.getdoc(obj) or ""
    if inspect.isclass(obj):
        return ClassDoc(obj, doc=doc, config={"show_inherited_class_members": False})
    return NumpyDocString(doc)


def entry(name: str, obj) -> str:
    doc = parse(obj)
    kind = "class" if inspect.isclass(obj) else "function"
    module = obj.__module__
    lines = [f"### `natexp.{name}`", "", f"*{kind}* `{module}.{obj.__name__}`", "",
             "```python", signature(name, obj), "```", ""]
    summary = paragraphs(doc["Summary"] + [""] + doc["Extended Summary"])
    if summary:
        lines += [summary, ""]
    documented = {n.strip() for p in doc["Parameters"] for n in p.name.split(",")}
    for section in _LISTS:
        items = doc[section]
        if section == "Attributes":  # ClassDoc lists every field; keep the described ones
            items = [p for p in items if p.desc or p.name not in documented]
        if items:
            lines += [f"**{section}**", "", item_list(items, section=section), ""]
    if doc["See Also"]:
        lines += ["**See Also**", ""]
        for funcs, desc in doc["See Also"]:
            names = ", ".join(f"`{f}`" for f, _ in funcs)
            lines.append(f"- {names}" + (f": {md(' '.join(desc))}" if desc else ""))
        lines.append("")
    for section in _TEXT:
        if doc[section]:
            lines += [f"**{section}**", "", paragraphs(list(doc[section])), ""]
    if doc["Examples"]:
        lines += ["**Examples**", "", examples(list(doc["Examples"])), ""]
    return "\n".join(lines)


def first_line(obj) -> str:
    doc = parse(obj)
    return md(" ".join(doc["Summary"])).strip()


# --------------------------------------------------------------------------- the page


def section_of(module: str) -> int:
    for i, (_, _, modules) in enumerate(SECTIONS):
        if any(module == m or (m.endswith(".") and module.startswith(m)) for m in modules):
            return i
    return len(SECTIONS)


def render() -> str:
    """The whole of ``docs/api.md``."""
    import natexp

    groups: dict[int, list[tuple[str, object]]] = {}
    for name, (module, _) in natexp._API.items():
        if name in natexp.__all__:
            groups.setdefault(section_of(module), []).append((name, getattr(natexp, name)))
    titles = [(t, intro) for t, intro, _ in SECTIONS] + [("Other", "")]
    head = [
        "<!-- Generated by docs/gen_api.py from the docstrings: do not edit by hand. -->",
        "<!-- Regenerate with: python docs/gen_api.py -->",
        "",
        "# natexp API reference",
        "",
        "Every public name is importable from the package (`import natexp; natexp.run(...)`) "
        "and loads its module on first use, so `import natexp` stays fast. Notebooks and the "
        "pipeline call the same functions; the examples below run as doctests in the test "
        "suite. Results computed from the embedded dataset are from **synthetic** data.",
        "",
        "## Contents",
        "",
    ]
    body: list[str] = []
    for i, (title, intro) in enumerate(titles):
        if i not in groups:
            continue
        anchor = re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-")
        head.append(f"- [{title}](#{anchor})")
        body += [f"## {title}", ""] + ([intro, ""] if intro else [])
        body += [f"- [`{n}`](#natexp{n.lower()}): {first_line(o)}" for n, o in groups[i]]
        body.append("")
        for name, obj in groups[i]:
            body += [entry(name, obj), ""]
    text = "\n".join(head + [""] + body)
    return re.sub(r"\n{3,}", "\n\n", text).rstrip() + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT} is out of date: run python docs/gen_api.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
