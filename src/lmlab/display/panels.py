"""Live panels: ipywidgets that re-run real code when a control moves, in Jupyter and in Colab.

Every panel has the same skeleton (`Panel`): its controls, a status line and an
output area that shows a figure. Whatever goes wrong in an update (a character the
model never saw, a NaN model, a RuntimeError) is shown in the status line, the last
figure stays, and the panel keeps working: no "running…" is ever left behind. The
stop button (Ctrl-C) is no error: it stops the update, the status says "interrupted"
and the next move runs again.

Only what ipywidgets 7.7 (Colab's) and 8 both provide is used.
"""

import html

import ipywidgets as widgets
from IPython.display import clear_output, display

from lmlab.display.figures import loss_figure_with_others
from lmlab.display.plumbing import displayable

INTERRUPTED = "interrupted"
SLIDER = dict(continuous_update=False, style={"description_width": "initial"})


class Panel:
    """Controls, a status line and an output area; `attempt` runs an update inside it."""

    def __init__(self, controls: list, note: str = ""):
        self.note, self.out, self.status = note, widgets.Output(), widgets.HTML(note)
        self.widget = widgets.VBox([widgets.HBox([*controls, self.status],
                                                 layout=widgets.Layout(flex_flow="row wrap")), self.out])

    def show(self, fig) -> None:
        """Replace the output with `fig`. (The old output goes with it: a closed progress bar's
        view would read "model not found".)"""
        with self.out:
            clear_output(wait=True)
            display(displayable(fig))

    def attempt(self, busy: str, work, in_cell: bool = False) -> bool:
        """Run `work()` with `busy` in the status line (output, e.g. a progress bar, goes to the
        output area); then show what `work` returned (a status text) or the note, or, when it
        raised, the error in red. True when it succeeded.

        Ctrl-C (the stop button) stops the update and leaves "interrupted" and the last figure.
        From a control, that is all: the panel answers the next move. `in_cell` (the first
        update, run by the cell that builds the panel) re-raises it, so the cell, and a Run All,
        stops as any interrupted cell does."""
        self.status.value = busy
        stop = None
        with self.out:  # inside: an Output widget would swallow the error into a traceback of its own
            try:
                done = work()
            except KeyboardInterrupt as interrupt:  # not an error: the reader asked to stop
                stop = interrupt
            except Exception as err:  # any error: say it, keep the panel alive
                message = str(err) if isinstance(err, ValueError) else f"{type(err).__name__}: {err}"
                self.status.value = f"<span style='color:#b3261e'>{html.escape(message, quote=False)}</span>"
                return False
        if stop is not None:
            self.status.value = INTERRUPTED
            if in_cell:
                raise stop
            return False
        self.status.value = done if isinstance(done, str) else self.note
        return True


def choice_slider(choices: dict, value, description: str) -> widgets.SelectionSlider:
    """A slider over labelled choices, e.g. {"4,096": 4096, "all": ALL}: the panel hands the update
    the chosen *value* (None included, which a widget cannot hold), the reader sees the label."""
    labels = list(choices)
    slider = widgets.SelectionSlider(options=labels, value=labels[list(choices.values()).index(value)],
                                     description=description, **SLIDER)
    slider.choices = choices
    return slider


def value_of(w: widgets.Widget):
    """What a control means: a `choice_slider`'s value for its label, else the widget's value."""
    return w.choices[w.value] if hasattr(w, "choices") else w.value


def _values(controls: dict) -> dict:
    return {name: value_of(w) for name, w in controls.items()}


def live_panel(update, controls: dict, note: str = "") -> widgets.VBox:
    """Widgets that call `update(**values)` whenever a control moves and show the figure it returns."""
    panel = Panel(list(controls.values()), note)

    def refresh(change=None):  # a control's move, or (None) the first drawing, in the building cell
        values = _values(controls)
        panel.attempt("running…", lambda: panel.show(update(**values)), in_cell=change is None)

    for w in controls.values():
        w.observe(refresh, names="value")
    refresh()
    return panel.widget


def training_panel(train, controls: dict, title, note: str = "") -> widgets.VBox:
    """Widgets that retrain whenever a control moves and redraw the loss curves after every
    evaluation. `train(callback, **values)` trains, calling `callback(history)` after each
    evaluation, and returns the finished History; `title(**values)` names a run. Finished runs
    stay on the figure as grey validation curves, so a reader compares settings by eye."""
    panel, done = Panel(list(controls.values()), note), {}

    def refresh(change=None):  # a control's move, or (None) the first run, in the building cell
        values = _values(controls)
        name = title(**values)

        def work():
            done[name] = train(lambda hist: panel.show(loss_figure_with_others(name, hist, done)), **values)
            panel.show(loss_figure_with_others(name, done[name], done))

        panel.attempt("training…", work, in_cell=change is None)

    for w in controls.values():
        w.observe(refresh, names="value")
    refresh()
    return panel.widget


def button_panel(draw, slider: widgets.Widget, label: str, act, summary) -> widgets.VBox:
    """A slider whose value `draw(value)` turns into a figure, and a button that runs the slow
    `act(value)` (it trains) and shows `draw(value, result)` with `summary(result)` beside it."""
    button = widgets.Button(description=label)
    panel = Panel([slider, button])

    def show(change=None):
        panel.attempt("", lambda: panel.show(draw(value_of(slider))), in_cell=change is None)

    def run(_):
        def work():
            result = act(value_of(slider))
            panel.show(draw(value_of(slider), result))
            return summary(result)

        panel.attempt("running…", work)

    slider.observe(show, names="value")
    button.on_click(run)
    show()
    return panel.widget


def k_slider(value=None, description: str = "top-k") -> widgets.SelectionSlider:
    """top-k over 1–20, 30, 40, 50 and "all" (None: no truncation, as `filter_logits` spells it)."""
    return choice_slider({**{str(k): k for k in (*range(1, 21), 30, 40, 50)}, "all": None}, value, description)
