"""nbval settings for the notebook series: compare what a reader reads, not incidental noise."""


def pytest_collectstart(collector):
    # stderr carries library warnings and progress bars; HTML and JS duplicate the text/plain
    # output (pandas tables) with volatile markup. The text/plain form is still compared.
    if getattr(collector, "path", None) is not None and collector.path.suffix == ".ipynb":
        collector.skip_compare += ("stderr", "text/html", "application/javascript")
