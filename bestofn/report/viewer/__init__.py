"""report.html: the page that shows what the verifiers did (`page.write_html`); `data` builds
what it embeds, `stop_point` an adaptive run's stop point per question."""

from .page import HTML_FILE, embedded, render, write_html

__all__ = ["HTML_FILE", "embedded", "render", "write_html"]
