"""The house plot style: one palette and one plotly template, used by every figure of the book."""

import plotly.graph_objects as go
import plotly.io as pio

COLORS = ["#1f5f8b", "#d1495b", "#edae49", "#00798c", "#66a182", "#8d6a9f", "#2e4057", "#e07a5f"]

pio.templates["lmlab"] = go.layout.Template(layout=dict(
    font=dict(family="Inter, Helvetica, Arial, sans-serif", size=13, color="#222"),
    colorway=COLORS, margin=dict(l=60, r=20, t=50, b=50), hovermode="x unified",
    legend=dict(bgcolor="rgba(255,255,255,0.7)"),
))
pio.templates.default = "plotly_white+lmlab"
