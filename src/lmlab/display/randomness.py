"""Chapter 6's live panel: greedy beside top-k, so that the seed moves one column only."""

import functools

import ipywidgets as widgets

from lmlab.display.panels import k_slider, live_panel
from lmlab.display.sampling import sampling_figure
from lmlab.sampling import sampling_frame


def randomness_panel(models: dict, tokenizer, prompt: str, chars: int, samples: int) -> widgets.VBox:
    """Chapter 6's two kinds of randomness, live: pick a trained model (`models` maps a name to a
    GPT), k and a seed; greedy samples and top-k samples of the prompt are drawn side by side, so
    moving the seed changes one column and leaves the other alone."""
    controls = {"model": widgets.ToggleButtons(options=list(models), description="model"),
                "k": k_slider(10),
                "seed": widgets.BoundedIntText(0, min=0, max=2**31 - 1, description="seed"),
                "prompt": widgets.Textarea(value=prompt, description="prompt", continuous_update=False)}

    @functools.lru_cache(maxsize=32)
    def greedy(model, prompt):  # depends on neither k nor the seed: moving them redraws one column
        return sampling_frame(models[model], tokenizer, prompt, chars, samples, temperature=0)

    def update(model, k, seed, prompt):
        columns = {"greedy (T = 0)": greedy(model, prompt or "\n"), f"top-{k or 'all'}, seed {seed}":
                   sampling_frame(models[model], tokenizer, prompt or "\n", chars, samples, seed, top_k=k)}
        return sampling_figure({"": columns}, tokenizer.chars, "", prompt, title=model, height=1100)

    return live_panel(update, controls)
