"""A Sphinx extension: `{glued-figure}`, a figure glued from a notebook, with a caption.

myst-nb's `{glue:figure}` takes a caption but pastes only from the page's own notebook, and
`{glue}` with `:doc:` pastes from another (a chapter page from its notebook) with no caption.
A chapter page needs both:

    ```{glued-figure} curves_fig
    :doc: dropout.ipynb
    :name: fig-dropout-curves

    What to see, in one line.
    ```

The figure lands in an HTML `<figure>` with the caption as its `<figcaption>`, which gives the
figure its accessible name, so a screen reader reads the same words a reader sees (the chart
inside takes no label of its own: book/assets/figure-theme.js).
"""

from docutils import nodes
from docutils.parsers.rst import directives
from myst_nb.ext.glue.directives import PasteAnyDirective


class GluedFigure(PasteAnyDirective):
    has_content = True
    option_spec = {"doc": directives.unchanged, "name": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        pasted = super().run()
        figure = nodes.figure("", *pasted, classes=["lmlab-figure"])
        self.set_source_info(figure)
        self.add_name(figure)
        if not self.content:
            raise self.error(f"glued-figure {self.arguments[0]!r} needs a caption: one line saying what to see")
        parsed = nodes.Element()
        self.state.nested_parse(self.content, self.content_offset, parsed)
        if len(parsed) != 1 or not isinstance(parsed[0], nodes.paragraph):
            raise self.error(f"glued-figure {self.arguments[0]!r}: the caption must be one paragraph")
        caption = nodes.caption(parsed[0].rawsource, "", *parsed[0].children)
        caption.source, caption.line = parsed[0].source, parsed[0].line
        figure += caption
        return [figure]


def setup(app):
    app.add_directive("glued-figure", GluedFigure)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
