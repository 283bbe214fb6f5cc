"""What the reader sees: figures for the HTML book, live panels for Jupyter and Colab.

`plumbing` gets figures and numbers to the page (renderer, glue, the static-twin switch),
`style` is the house look, `figures` the generic figures (slider twins, loss curves),
`panels` the live-panel skeleton; each chapter's own figures sit in a module named after
its experiments (`mup`, `scaling`, `sampling`, `randomness`). The common names are here:

    from lmlab import display as viz
    viz.glue_all({...}); viz.panel(make_live, static_twin, hint)
"""

from lmlab.display.figures import LiveLossPlot, loss_figure, loss_traces, runs_slider_figure, slider_figure
from lmlab.display.panels import button_panel, choice_slider, k_slider, live_panel, training_panel, value_of
from lmlab.display.plumbing import displayable, glue, glue_all, in_colab, panel
from lmlab.display.style import COLORS, GREY, INK

__all__ = ["COLORS", "GREY", "INK", "LiveLossPlot", "button_panel", "choice_slider", "displayable", "glue",
           "glue_all", "in_colab", "k_slider", "live_panel", "loss_figure", "loss_traces", "panel",
           "runs_slider_figure", "slider_figure", "training_panel", "value_of"]
