"""Every figure a run draws keeps its text inside the figure, and no axis title spans panels.

Each figure of the default experiment (and the staggered rollout's event study, from a light
run) is drawn at its report size the way :func:`natexp.report.figures.png_bytes` draws it, then
every visible text artist's window extent is measured with matplotlib's Agg renderer: a label
that starts left of the figure's edge (a clipped "ifference.newcombe...") or an axis title that
runs down more than one panel fails.
"""

from __future__ import annotations

import matplotlib
import pytest

matplotlib.use("Agg")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from plotnine import theme  # noqa: E402

from natexp.report.render import figure_specs, study_of  # noqa: E402

DPI = 100
TOL = 0.5  # pixels of rounding


def _draw(plot, width: float, height: float):
    fig = (plot + theme(figure_size=(width, height), dpi=DPI)).draw()
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return fig, canvas.get_renderer()


def _texts(fig, renderer):
    """Visible, non-empty text artists with their window extents."""
    out = []
    for t in fig.findobj(Text):
        if not t.get_visible() or not t.get_text().strip():
            continue
        out.append((t, t.get_window_extent(renderer)))
    return out


def _outside(fig, renderer) -> list[str]:
    box = fig.bbox
    bad = []
    for t, e in _texts(fig, renderer):
        if (e.x0 < box.x0 - TOL or e.y0 < box.y0 - TOL or e.x1 > box.x1 + TOL
                or e.y1 > box.y1 + TOL):
            bad.append(f"{t.get_text()[:40]!r} at x {e.x0:.0f}..{e.x1:.0f}, "
                       f"y {e.y0:.0f}..{e.y1:.0f} (figure {box.width:.0f} x {box.height:.0f})")
    return bad


def _axis_titles_spanning_panels(fig, renderer) -> list[str]:
    """Axis titles (text rotated 90 degrees, left of the panels) taller than every panel."""
    panels = [ax.get_window_extent(renderer) for ax in fig.axes if ax.get_visible()]
    if not panels:
        return []
    tallest = max(p.height for p in panels)
    bad = []
    for t, e in _texts(fig, renderer):
        if abs(t.get_rotation() - 90) < 1 and e.height > tallest + TOL:
            bad.append(f"{t.get_text()[:40]!r}: {e.height:.0f} px tall, panels at most "
                       f"{tallest:.0f} px")
    return bad


def _figures(results, tables):
    for spec in figure_specs(study_of(results)):
        plot = spec.build(results, tables)
        if plot is not None:
            yield spec, plot


@pytest.fixture(scope="module")
def default_run(example_run):
    """The session's in-process example run (conftest: oxon_vs_rest without DoWhy)."""
    from tests.conftest import run_copy

    return run_copy(example_run)


@pytest.fixture(scope="module")
def staggered_run():
    """The staggered rollout with light settings: its event study is the figure checked."""
    from natexp.config import compose
    from natexp.pipeline import run

    res = run(compose(["+experiment=staggered_rollout", "synthetic.n_families=3000",
                       "panel.n_boot=99", "panel.n_permutations=99"]), write=False)
    return res.results, res.tables


def test_every_default_figure_keeps_its_text_inside(default_run):
    results, tables = default_run
    drawn, problems = [], {}
    for spec, plot in _figures(results, tables):
        fig, renderer = _draw(plot, spec.width, spec.height)
        drawn.append(spec.name)
        bad = _outside(fig, renderer) + _axis_titles_spanning_panels(fig, renderer)
        if bad:
            problems[spec.name] = bad
        matplotlib.pyplot.close(fig)
    assert {"flow", "primary_forest", "specification_curve", "tipping_point"} <= set(drawn)
    assert problems == {}, problems


def test_event_study_keeps_its_text_inside(staggered_run):
    results, tables = staggered_run
    specs = {s.name: (s, p) for s, p in _figures(results, tables)}
    assert "event_study" in specs
    for name, (spec, plot) in specs.items():
        fig, renderer = _draw(plot, spec.width, spec.height)
        bad = _outside(fig, renderer) + _axis_titles_spanning_panels(fig, renderer)
        assert bad == [], (name, bad)
        matplotlib.pyplot.close(fig)


def test_specification_curve_axis_title_stays_beside_the_curve(default_run):
    """The curve's quantity must not be an axis title running down the choice rows too."""
    results, tables = default_run
    spec, plot = next((s, p) for s, p in _figures(results, tables)
                      if s.name == "specification_curve")
    fig, renderer = _draw(plot, spec.width, spec.height)
    texts = _texts(fig, renderer)
    table = tables["specification_curve"]
    levels = {str(v) for v in table["window"].unique()}
    rows = [e for t, e in texts if any(v in t.get_text() for v in levels)]
    assert rows, "the choice rows carry no window label"
    rows_low, rows_high = min(e.y0 for e in rows), max(e.y1 for e in rows)
    for t, e in texts:
        if abs(t.get_rotation() - 90) < 1:  # a y-axis title
            assert e.y1 <= rows_low or e.y0 >= rows_high, (
                f"{t.get_text()!r} runs from y {e.y0:.0f} to {e.y1:.0f}, across the choice "
                f"rows ({rows_low:.0f} to {rows_high:.0f})")
    matplotlib.pyplot.close(fig)
