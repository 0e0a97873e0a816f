"""Pictures of optimization: landscapes with trajectories (an optimizer race) and loss-versus-step curves.

``RacePicture`` draws a landscape once and then only redraws what a slider changed (the trajectories, the
loss curves, the messages), which keeps a widget update fast. It renders to PNG bytes for an
``ipywidgets.Image`` and also displays as an ordinary figure in a notebook.
"""

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullLocator
from PIL import Image

__all__ = ["COLORS", "NotebookFigure", "RacePicture", "curve_figure", "draw_landscape"]

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
GRID_POINTS = 120
LOSS_FLOOR = 1e-12  # loss gaps below this are drawn at the floor of the log-scaled loss plot


class NotebookFigure(Figure):
    """A matplotlib Figure that shows itself as PNG when it ends a notebook cell, without pyplot."""

    def _repr_png_(self):
        buffer = io.BytesIO()
        FigureCanvasAgg(self).print_png(buffer)
        return buffer.getvalue()


class RacePicture:
    """A landscape's contours with one trajectory per runner, beside each runner's loss gap f(x_k) - f*.

    ``update(landscape, results, steps)`` takes ``results``: label -> Trajectory, or label -> str for a runner
    that could not run (the string is shown on the plot instead of a traceback).
    """

    def __init__(self, labels, figsize=(9.6, 3.8), dpi=72, show_loss=True):
        self.labels = list(labels)
        self.figure = Figure(figsize=figsize, dpi=dpi)
        self.figure.subplots_adjust(left=0.06, right=0.985, bottom=0.13, top=0.93, wspace=0.2)
        self.canvas = FigureCanvasAgg(self.figure)
        if show_loss:
            self.ax_map, self.ax_loss = self.figure.subplots(1, 2, width_ratios=(1.15, 1))
        else:
            self.ax_map, self.ax_loss = self.figure.subplots(), None
        self._static_key = None
        self._background = None
        self._contours = []
        self.paths, self.heads, self.curves = {}, {}, {}
        for label, color in zip(self.labels, _cycle(COLORS, len(self.labels)), strict=True):
            (self.paths[label],) = self.ax_map.plot([], [], "-", color=color, lw=1.6, marker="o", ms=2.5,
                                                    label=label, animated=True)
            (self.heads[label],) = self.ax_map.plot([], [], "X", color=color, ms=11, mec="k", animated=True)
            if self.ax_loss is not None:
                (self.curves[label],) = self.ax_loss.plot([], [], "-", color=color, lw=1.6, label=label,
                                                          animated=True)
        self.message = self.ax_map.text(0.02, 0.02, "", transform=self.ax_map.transAxes, fontsize=10,
                                        va="bottom", ha="left", animated=True,
                                        bbox={"boxstyle": "round", "fc": "white", "ec": "0.6", "alpha": 0.9})
        self.ax_map.legend(loc="upper right", fontsize=8, framealpha=0.85)

    # ----------------------------------------------------------------------------------------------------
    def update(self, landscape, results, steps, start=None):
        """Draw ``results`` (label -> Trajectory or message) on ``landscape`` for a run of ``steps`` steps."""
        start = landscape.start if start is None else start
        key = (id(landscape), int(steps), tuple(np.round(np.asarray(start, dtype=float), 12)))
        if key != self._static_key:
            self._draw_static(landscape, steps, start)
            self._static_key = key
        notes = []
        for label in self.labels:
            result = results.get(label)
            path, head = self.paths[label], self.heads[label]
            if result is None or isinstance(result, str):
                path.set_data([], [])
                head.set_data([], [])
                self._set_curve(label, [], [])
                if isinstance(result, str):
                    notes.append(f"{label}: {result}")
                continue
            points = result.points
            path.set_data(points[:, 0], points[:, 1])
            if result.diverged:
                head.set_data(points[-1:, 0], points[-1:, 1])
                notes.append(f"{label} diverged at step {result.diverged_at}")
            else:
                head.set_data([], [])
            gap = np.maximum(result.losses - landscape.minimum_value, LOSS_FLOOR)
            self._set_curve(label, np.arange(len(gap)), gap)
        self.message.set_text("\n".join(notes))
        self.message.set_visible(bool(notes))
        return self

    def png(self):
        """The current picture as PNG bytes, redrawing only the animated artists over a cached background."""
        if self._background is None:
            self.canvas.draw()
            self._background = self.canvas.copy_from_bbox(self.figure.bbox)
        else:
            self.canvas.restore_region(self._background)
        renderer = self.canvas.get_renderer()
        for artist in self._animated():
            artist.draw(renderer)
        width, height = self.canvas.get_width_height()
        image = Image.frombuffer("RGBA", (width, height), self.canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="png", compress_level=1)
        return buffer.getvalue()

    def _repr_png_(self):
        return self.png()

    # ----------------------------------------------------------------------------------------------------
    def _animated(self):
        artists = [*self.paths.values(), *self.heads.values(), *self.curves.values(), self.message]
        return [artist for artist in artists if artist.get_visible()]

    def _set_curve(self, label, steps, gaps):
        if self.ax_loss is not None:
            self.curves[label].set_data(steps, gaps)

    def _draw_static(self, landscape, steps, start):
        self._background = None
        for contour in self._contours:
            contour.remove()
        self._contours = [draw_landscape(self.ax_map, landscape)]
        (start_marker,) = self.ax_map.plot(*np.asarray(start, dtype=float)[:2], "o", color="k", ms=5)
        self._contours.append(start_marker)
        self.ax_map.set_title(landscape.name, fontsize=10)
        if self.ax_loss is not None:
            initial_gap = max(float(landscape(start)) - landscape.minimum_value, 1e-6)
            self.ax_loss.set_yscale("log")
            self.ax_loss.set_xlim(0, max(int(steps), 1))
            self.ax_loss.set_ylim(LOSS_FLOOR * 0.5, initial_gap * 1e3)
            # Few, plain tick labels: text is most of the cost of a full redraw.
            self.ax_loss.yaxis.set_major_locator(LogLocator(numticks=6))
            self.ax_loss.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.0e}"))
            self.ax_loss.yaxis.set_minor_locator(NullLocator())
            self.ax_loss.set_xlabel("step")
            self.ax_loss.set_ylabel("f(x) - f*")
            self.ax_loss.grid(True, which="major", alpha=0.3)


def draw_landscape(ax, landscape, levels=18):
    """Contour lines of ``landscape`` in its plotting window, its minima (stars) and saddles (crosses).

    Returns an artist container whose ``remove()`` takes everything it drew off the axes.
    """
    xs = np.linspace(*landscape.xlim, GRID_POINTS)
    ys = np.linspace(*landscape.ylim, GRID_POINTS)
    grid_x, grid_y = np.meshgrid(xs, ys)
    heights = landscape.f(np.stack([grid_x, grid_y])) - landscape.minimum_value
    drawn = _Drawn()
    if landscape.log_levels:
        positive = np.maximum(heights, 1e-6)
        contour_levels = np.geomspace(max(positive.min(), 1e-3), positive.max(), levels)
        drawn.add(ax.contour(grid_x, grid_y, positive, levels=contour_levels, cmap="viridis",
                             norm=LogNorm(), linewidths=0.8))
    else:
        drawn.add(ax.contour(grid_x, grid_y, heights, levels=levels, cmap="viridis", linewidths=0.8))
    for minimum in landscape.minima:
        drawn.add(ax.plot(*minimum[:2], "*", color="gold", mec="k", ms=13, zorder=3)[0])
    for saddle in landscape.saddles:
        drawn.add(ax.plot(*saddle[:2], "P", color="w", mec="k", ms=9, zorder=3)[0])
    ax.set_xlim(*landscape.xlim)
    ax.set_ylim(*landscape.ylim)
    ax.xaxis.set_major_locator(MaxNLocator(6))
    ax.yaxis.set_major_locator(MaxNLocator(6))
    return drawn


class _Drawn(list):
    def add(self, artist):
        self.append(artist)

    def remove(self):
        for artist in self:
            artist.remove()


def curve_figure(x, curves, xlabel, ylabel, logx=False, logy=False, title=None, figsize=(5.5, 3.4)):
    """A static figure of ``curves`` (label -> y values, or label -> (y, style)) against ``x``."""
    figure = NotebookFigure(figsize=figsize, dpi=90, layout="constrained")
    ax = figure.subplots()
    for label, values in curves.items():
        y, style = values if isinstance(values, tuple) else (values, "-o")
        ax.plot(x, y, style, label=label, ms=4)
    ax.set(xlabel=xlabel, ylabel=ylabel, xscale="log" if logx else "linear", yscale="log" if logy else "linear")
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return figure


def _cycle(values, n):
    return [values[i % len(values)] for i in range(n)]
