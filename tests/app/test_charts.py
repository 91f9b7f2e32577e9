"""Charts drawn on the server (app/workspace/charts.py): plain values in, SVG out."""

from app.workspace.charts import MAX_SERIES, Series, fold, line_chart


def test_a_stacked_bar_chart_draws_each_value_with_its_title_and_a_legend():
    svg = line_chart(
        ["11-01", "11-02"], [Series("a", [1, 0]), Series("b", [2, 3])], title="t", stacked_bars=True
    )
    assert svg.startswith('<svg class="chart"') and "<title>t</title>" in svg
    assert svg.count("<rect class=") == 3 + 2  # three non-zero bars, two legend keys
    assert "<title>11-02 b: 3</title>" in svg


def test_names_are_escaped():
    svg = line_chart(["<d>"], [Series("<script>", [1])], title="<x>")
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_many_series_are_folded_into_other():
    series = [Series(str(n), [n]) for n in range(12)]
    folded = fold(series)
    assert len(folded) == MAX_SERIES and folded[0].name == "11"
    assert folded[-1].values == [sum(range(5))]
