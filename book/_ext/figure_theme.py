"""A Sphinx extension that hands the house plot style to every page of the book.

book/assets/figure-theme.js draws each plotly figure in the page's light or dark theme; the
dark template and the light -> dark map of the colours that traces name come from
`lmlab.display.style`, the one place they are defined, as `window.LMLAB_FIGURE_THEME`. The
script is inline, so that the pages keep working offline and from file://.
"""

from lmlab.display import style


def setup(app):
    # before html_js_files (priority 500): figure-theme.js reads the theme when it loads
    theme = style.theme_json().replace("</", "<\\/")  # never a closing tag inside the inline script
    app.add_js_file(None, body=f"window.LMLAB_FIGURE_THEME = {theme};", priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
