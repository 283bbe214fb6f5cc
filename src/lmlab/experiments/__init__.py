"""What the chapters measure, one module per idea, built on the engine below (`lmlab.*`).

Experiments import the engine and nothing above it (no plotly, no widgets): a
chapter's figures live in `lmlab.display`, which imports these.
"""
