"""Pictures of optimization: landscapes with trajectories (an optimizer race) and loss-versus-step curves.

``RacePicture`` draws a landscape once and then only redraws what a slider changed (the trajectories, the
loss curves, the messages), which keeps a widget update fast. It renders to PNG bytes for an
``ipywidgets.Image`` and also displays as an ordinary figure in a notebook.
"""

import io
import textwrap
from collections import OrderedDict

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap, LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullLocator
from matplotlib.transforms import Bbox
from PIL import Image

__all__ = ["COLORS", "LINE_STYLES", "MARKERS", "OKABE_ITO", "AugmentationPicture", "DropoutPicture",
           "NotebookFigure", "RacePicture", "SchedulePicture", "curve_figure", "draw_landscape",
           "pooling_windows_figure", "style", "wrap_message"]

# Okabe & Ito's colour-blind-safe palette, and line styles and markers that differ as well, so that no line is
# told apart by its colour alone. COLORS: the order in which a picture's lines take them (yellow, the faintest on
# white, last).
OKABE_ITO = {"blue": "#0072B2", "vermillion": "#D55E00", "green": "#009E73", "orange": "#E69F00",
             "purple": "#CC79A7", "sky": "#56B4E9", "yellow": "#F0E442", "black": "#000000"}
COLORS = tuple(OKABE_ITO[name] for name in ("blue", "vermillion", "green", "orange", "purple", "sky", "black",
                                            "yellow"))
LINE_STYLES = ("-", (0, (4, 2.5)), "-.", ":", (0, (6, 2, 1, 2, 1, 2)), (0, (1, 3)), (0, (8, 3)), (0, (3, 1)))
LINE_WIDTHS = (3.4, 2.0, 1.8, 1.6, 1.5, 1.4, 1.3, 1.2)  # the first widest: a later line on its path leaves it seen
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
MESSAGE_WIDTH = 58  # characters per line of a message drawn on the map: wrapped there, never cut at the edge
MESSAGE_LINES = 9
LEGEND_WIDTH, LEGEND_LINES = 26, 14  # the race's legend: characters per line, lines at full size
# Contours in greys, dark in the valleys: the coloured paths stand out on them.
CONTOUR_COLORS = ListedColormap([str(level) for level in np.linspace(0.25, 0.78, 16)], name="course-greys")
GRID_POINTS = 100
STEP_AXIS_ENDS = (10, 25, 50, 100, 200, 300, 500, 1000)
LOSS_FLOOR = 1e-12  # loss gaps below this are drawn at the floor of the log-scaled loss plot


class NotebookFigure(Figure):
    """A matplotlib Figure that shows itself as PNG when it ends a notebook cell, without pyplot.

    IPython keeps every cell's result (``Out``), so a figure shown lives as long as the kernel: once its PNG is
    made, the figure lets go of its renderer's pixel buffer (about 2 MB of a figure's 3; drawing again makes a
    new one)."""

    def _repr_png_(self):
        buffer = io.BytesIO()
        canvas = FigureCanvasAgg(self)
        canvas.print_png(buffer)
        canvas.renderer, canvas._lastKey = None, None  # the next draw makes a new renderer
        return buffer.getvalue()


class _Panel:
    """One axes in a figure of its own. Its static content (contours, ticks, labels) is drawn once per key and
    kept as a picture; each render restores that picture and draws only the animated artists over it. The
    last few keys' pictures are kept, so going back to a landscape or a number of steps costs no redraw.

    An animated artist that lies outside the axes, where no other animated artist draws (a legend beside the
    plot), and whose ink is all in some of its parts (a legend without frame or title: its entries), can be
    given to ``rgba`` with those parts, each with a key for what it shows (an entry's text and font size). The
    artist is laid out as usual; then each part's pixels are kept per (panel key, part key, place) and put back
    instead of drawing the part again; where the parts were placed is kept too, per (panel key, parts' keys):
    the artist's layout must follow from its parts' keys. Text is most of the cost of a render, and a change of
    one runner's hyperparameter changes one entry of the legend: the others' pixels are put back. (Where two
    parts' boxes would share pixels, or a part's drawing reaches past its box, the artist is drawn whole, as
    without keys: every picture is the one drawn with nothing kept.)"""

    KEPT = 8
    KEPT_OVERLAYS = 64
    OVERLAY_PADDING = 3  # pixels kept left and right of a part's box: a legend line's cap reaches past it

    def __init__(self, figsize, dpi, margins):
        self.figure = Figure(figsize=figsize, dpi=dpi)
        self.figure.subplots_adjust(**margins)
        self.canvas = FigureCanvasAgg(self.figure)
        self.ax = self.figure.subplots()
        self.key = None
        self._pictures = OrderedDict()
        self._overlays = OrderedDict()
        self._placements = OrderedDict()  # (key, parts' keys) -> where an overlay's parts were placed

    def show(self, key, set_limits, draw_static=None):
        """Make ``key`` current. ``set_limits()`` runs every time (the animated artists are drawn in the axes'
        coordinates); ``draw_static()`` only when no picture of ``key`` is kept."""
        if key == self.key:
            return
        self.key = key
        set_limits()
        if key in self._pictures:
            self._pictures.move_to_end(key)
        elif draw_static is not None:
            draw_static()

    def rgba(self, overlays=None):
        """The panel's pixels: the static picture of the current key with the animated artists over it.
        ``overlays``: artist -> {part: key of what the part shows}, for artists drawn by parts whose pixels may
        be kept (see the class)."""
        overlays = overlays or {}
        picture = self._pictures.get(self.key)
        if picture is None:
            self.canvas.draw()
            self._pictures[self.key] = self.canvas.copy_from_bbox(self.figure.bbox)
            while len(self._pictures) > self.KEPT:
                self._pictures.popitem(last=False)
            for kept in [key for key in self._overlays if key[0] == self.key]:  # drawn on the old picture
                del self._overlays[kept]
        else:
            self.canvas.restore_region(picture)
        renderer = self.canvas.get_renderer()
        animated = [a for a in self.ax.get_children() if a.get_animated() and a.get_visible()]
        for artist in sorted(animated, key=lambda a: a.get_zorder()):
            if artist in overlays:
                self._draw_overlay(artist, overlays[artist], renderer)
            else:
                artist.draw(renderer)
        return np.asarray(self.canvas.buffer_rgba())

    def _draw_overlay(self, artist, parts, renderer):
        """Draw ``artist``: laid out with its ``parts`` (part -> key) not drawn, then each part put back from its
        kept pixels or drawn and kept. A part is kept as the whole pixels its box covers; if its drawing reaches
        past them (checked on a ring of pixels around the box), or two parts' boxes share pixels, the artist is
        drawn whole, as without keys, and nothing is kept."""
        layout = (self.key, tuple(parts.values()))
        placed = self._placements.get(layout)
        if placed is None or any((self.key, key, tuple(placed[part].bounds)) not in self._overlays
                                 for part, key in parts.items()):
            placed = self._place(artist, parts, renderer)
            self._placements[layout] = placed
            while len(self._placements) > self.KEPT_OVERLAYS:
                self._placements.popitem(last=False)
        boxes = {part: _pixel_box(extent, self.OVERLAY_PADDING) for part, extent in placed.items()}
        if not _apart(list(boxes.values())):
            artist.draw(renderer)
            return
        pixels = np.asarray(self.canvas.buffer_rgba())
        height = pixels.shape[0]
        before, drawn = None, []  # what lies under the artist (put back if a part reaches past its box); keys
        for part, (x0, y0, x1, y1) in boxes.items():
            key = (self.key, parts[part], tuple(placed[part].bounds))
            kept = self._overlays.get(key)
            if kept is not None:
                self._overlays.move_to_end(key)
                self.canvas.restore_region(kept)
                continue
            top = height - y1  # the box's first row in the buffer (rows go down, display y goes up)
            ring_top, ring_left = max(top - 2, 0), max(x0 - 2, 0)  # the box and two pixels around it
            ring = np.s_[ring_top:height - y0 + 2, ring_left:x1 + 2]
            if before is None:
                before = pixels.copy()
            around = pixels[ring].copy()
            part.draw(renderer)  # at the place just found: its offset is set
            escaped = pixels[ring] != around
            escaped[top - ring_top:top - ring_top + y1 - y0, x0 - ring_left:x1 - ring_left] = False
            if escaped.any():
                pixels[...] = before
                artist.draw(renderer)
                for key in drawn:
                    del self._overlays[key]
                return
            self._overlays[key] = self.canvas.copy_from_bbox(Bbox.from_extents(x0, y0, x1, y1))
            drawn.append(key)
        while len(self._overlays) > self.KEPT_OVERLAYS:
            self._overlays.popitem(last=False)


    @staticmethod
    def _place(artist, parts, renderer):
        """part -> its box in display coordinates: ``artist`` laid out, its parts placed, none of them drawn."""
        placed = {}
        for part in parts:  # matplotlib places a part just before drawing it: note where, draw nothing yet
            part.draw = lambda renderer, part=part: placed.__setitem__(part, part.get_window_extent(renderer))
        try:
            artist.draw(renderer)
        finally:
            for part in parts:
                del part.draw
        return placed


def _pixel_box(extent, padding):
    """The whole pixels (x0, y0, x1, y1; display coordinates, ends excluded) that ``extent`` touches, widened by
    ``padding`` pixels left and right."""
    return (int(np.floor(extent.x0)) - padding, int(np.floor(extent.y0)), int(np.ceil(extent.x1)) + padding,
            int(np.ceil(extent.y1)))


def _apart(boxes):
    """Whether no two of ``boxes`` (as ``_pixel_box`` gives them) share a pixel."""
    return not any(a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
                   for index, a in enumerate(boxes) for b in boxes[index + 1:])


class _SideBySide:
    """A picture made of panels side by side (``self.panels``), shown as one PNG."""

    panels = ()

    def png(self):
        """The panels' pixels next to each other, as PNG bytes (fast compression: this runs on every slider
        move)."""
        pixels = np.hstack([panel.rgba(self._overlays(panel))[..., :3] for panel in self.panels])
        buffer = io.BytesIO()
        Image.fromarray(pixels, "RGB").save(buffer, format="png", compress_level=1)
        return buffer.getvalue()

    def _repr_png_(self):
        return self.png()

    def _overlays(self, panel):
        """artist -> key, for the artists of ``panel`` whose pixels may be kept (see ``_Panel``): none here."""
        return None


class RacePicture(_SideBySide):
    """A landscape's contours with one trajectory per runner, beside each runner's loss gap f(x_k) - f*.

    ``update(landscape, results, steps, start, names, notes)`` takes ``results``: label -> Trajectory, or label
    -> str for a runner that could not run (the string is shown on the plot instead of a traceback);
    ``names``: label -> the name the legend gives it (e.g. with its learning rate); ``notes``: more lines for
    the message box. Each runner has its own colour, line style and marker (``style``), later runners drawn
    thinner and on top, so that two runners on the same path both show. The two panels are separate figures,
    so a change of landscape redraws the map alone and a change of hyperparameter redraws neither: only the
    trajectories, curves, legend and messages are drawn again.
    """

    def __init__(self, labels, height=3.8, dpi=72):
        self.labels = list(labels)
        self.map = _Panel((5.2, height), dpi, {"left": 0.12, "right": 0.97, "bottom": 0.13, "top": 0.93})
        # The loss panel keeps room on its right for the legend, which names every runner with its values.
        self.loss = _Panel((6.2, height), dpi, {"left": 0.12, "right": 0.62, "bottom": 0.13, "top": 0.93})
        self.panels = (self.map, self.loss)
        self.ax_map, self.ax_loss = self.map.ax, self.loss.ax
        self._landscape_artists = None
        (self.start_marker,) = self.ax_map.plot([], [], "o", color="k", ms=5, animated=True, zorder=20)
        self.paths, self.heads, self.curves = {}, {}, {}
        for index, label in enumerate(self.labels):
            line = style(index)
            (self.paths[label],) = self.ax_map.plot([], [], label=label, animated=True, ms=line["ms"],
                                                    **_without(line, "ms"))
            (self.heads[label],) = self.ax_map.plot([], [], "X", color=line["color"], ms=11, mec="k",
                                                    animated=True, zorder=line["zorder"])
            (self.curves[label],) = self.ax_loss.plot([], [], label=label, animated=True,
                                                      **_without(line, "marker", "ms", "markevery", "mfc"))
        self.message = self.ax_map.text(0.02, 0.02, "", transform=self.ax_map.transAxes, fontsize=9,
                                        va="bottom", ha="left", animated=True, zorder=30,
                                        bbox={"boxstyle": "round", "fc": "white", "ec": "0.6", "alpha": 0.9})
        # The legend names each runner with the values it runs with: drawn with the animated artists, since
        # a slider changes its text.
        self.legend = self.ax_loss.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False,
                                          handlelength=3.4, borderaxespad=0.0)
        self.legend.set_animated(True)
        self.legend.set_zorder(30)
        self.ax_loss.set_yscale("log")
        self.ax_loss.set_xlabel("step")
        self.ax_loss.set_ylabel("f(x) - f*")
        # Few, plain tick labels: text is most of the cost of a full redraw.
        self.ax_loss.yaxis.set_major_locator(LogLocator(numticks=6))
        self.ax_loss.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.0e}"))
        self.ax_loss.yaxis.set_minor_locator(NullLocator())
        self.ax_loss.grid(True, which="major", alpha=0.3)
        # A fixed range (the loss gap of every landscape here starts below 1e3) keeps the panel's picture
        # valid whatever the start point.
        self.ax_loss.set_ylim(LOSS_FLOOR * 0.5, 1e5)

    # ----------------------------------------------------------------------------------------------------
    def update(self, landscape, results, steps, start=None, names=None, notes=()):
        """Draw ``results`` (label -> Trajectory or message) on ``landscape`` for a run of ``steps`` steps."""
        start = np.asarray(landscape.start if start is None else start, dtype=float)
        self.map.show((landscape.name, landscape.xlim, landscape.ylim), lambda: self._set_map_limits(landscape),
                      lambda: self._draw_landscape(landscape))
        self.start_marker.set_data(start[:1], start[1:2])
        # The step axis ends at a round number at or above steps: a few pictures serve every steps value.
        step_axis = next((end for end in STEP_AXIS_ENDS if end >= steps), int(steps))
        self.loss.show(step_axis, lambda: self.ax_loss.set_xlim(0, step_axis))
        messages = []
        self._name_runners(names or {})
        for label in self.labels:
            result = results.get(label)
            path, head, curve = self.paths[label], self.heads[label], self.curves[label]
            if result is None or isinstance(result, str):
                for artist in (path, head, curve):
                    artist.set_data([], [])
                if isinstance(result, str):
                    messages.append(f"{label}: {result}")
                continue
            points = result.points
            path.set_data(points[:, 0], points[:, 1])
            # Markers show the steps while they can be told apart; on a longer run, a few along the path.
            path.set_markevery(1 if len(points) <= 60 else max(len(points) // 12, 1))
            if result.diverged:
                head.set_data(points[-1:, 0], points[-1:, 1])
                messages.append(f"{label} diverged at step {result.diverged_at}")
            else:
                head.set_data([], [])
            gap = np.maximum(result.losses - landscape.minimum_value, LOSS_FLOOR)
            curve.set_data(np.arange(len(gap)), gap)
        text = wrap_message([*messages, *notes])
        self.message.set_text(text)
        self.message.set_visible(bool(text))
        return self

    def _overlays(self, panel):
        """The legend, beside the loss panel's axes, is kept entry by entry: each entry (its line and its name)
        per label, name and font size."""
        if panel is not self.loss:
            return None
        entries = _legend_entries(self.legend)
        return {self.legend: {entries[text]: (label, text.get_text(), text.get_fontsize())
                              for label, text in zip(self.labels, self.legend.get_texts(), strict=True)}}

    def _name_runners(self, names):
        """The legend's names, each line wrapped at ``LEGEND_WIDTH`` characters, in a font small enough for
        all of them to fit the panel's height."""
        texts = ["\n".join(piece for line in names.get(label, label).splitlines()
                           for piece in textwrap.wrap(line, LEGEND_WIDTH) or [""]) for label in self.labels]
        lines = sum(text.count("\n") + 1 for text in texts)
        size = min(8.0, 8.0 * LEGEND_LINES / lines)
        for text, shown in zip(self.legend.get_texts(), texts, strict=True):
            text.set_text(shown)
            text.set_fontsize(size)

    def _set_map_limits(self, landscape):
        self.ax_map.set_xlim(*landscape.xlim)
        self.ax_map.set_ylim(*landscape.ylim)

    def _draw_landscape(self, landscape):
        if self._landscape_artists is not None:
            self._landscape_artists.remove()
        self._landscape_artists = draw_landscape(self.ax_map, landscape)
        self.ax_map.set_title(landscape.name, fontsize=10)


def _legend_entries(legend):
    """text -> the box matplotlib packs that legend text in with its handle (the entry)."""
    texts, entries = set(legend.get_texts()), {}

    def visit(box):
        for child in box.get_children():
            found = [t for t in getattr(child, "get_children", list)() if t in texts]
            if found:  # the text's own box: ``box`` holds it and its handle
                entries[found[0]] = box
            elif hasattr(child, "get_children"):
                visit(child)

    visit(legend)
    return entries


def style(index):
    """The look of the ``index``-th line of a picture: Okabe-Ito colour, its own dashes and marker, later
    lines thinner and on top (so that a line on the same path as an earlier one leaves it visible)."""
    color = COLORS[index % len(COLORS)]
    return {"color": color, "linestyle": LINE_STYLES[index % len(LINE_STYLES)],
            "lw": LINE_WIDTHS[min(index, len(LINE_WIDTHS) - 1)], "marker": MARKERS[index % len(MARKERS)],
            "ms": max(6.0 - 0.5 * index, 3.0), "mfc": "white", "mec": color, "zorder": 5 + index}


def _without(mapping, *keys):
    return {key: value for key, value in mapping.items() if key not in keys}


def wrap_message(lines, width=MESSAGE_WIDTH, most=MESSAGE_LINES):
    """``lines`` joined for a message box: each wrapped at ``width`` characters, at most ``most`` lines in all
    (the last then says how many more there were), so that no message runs past the plot's edge."""
    wrapped = [piece for line in lines for piece in textwrap.wrap(str(line), width, break_long_words=True,
                                                                  subsequent_indent="  ")]
    if len(wrapped) > most:
        wrapped = wrapped[:most - 1] + [f"... and {len(wrapped) - most + 1} more lines (see below the picture)"]
    return "\n".join(wrapped)


class SchedulePicture(_SideBySide):
    """Learning rates against the step (left) and the loss they give a noisy run (right), one line per label.

    ``update(curves, steps, message)``: ``curves`` maps a label to (learning rates, losses) arrays.
    """

    def __init__(self, labels, height=3.4, dpi=72, rate_limits=(1e-5, 3.0), loss_limits=(1e-3, 1e2)):
        self.labels = list(labels)
        self.rates = _Panel((4.8, height), dpi, {"left": 0.16, "right": 0.97, "bottom": 0.15, "top": 0.92})
        self.losses = _Panel((4.8, height), dpi, {"left": 0.16, "right": 0.97, "bottom": 0.15, "top": 0.92})
        self.panels = (self.rates, self.losses)
        for panel, title, limits in ((self.rates, "learning rate", rate_limits),
                                     (self.losses, "loss (running mean of 50 steps)", loss_limits)):
            panel.ax.set(yscale="log", xlabel="step", title=title, ylim=limits)
            panel.ax.title.set_fontsize(10)
            panel.ax.grid(True, alpha=0.3)
        self.rate_lines, self.loss_lines = {}, {}
        for index, label in enumerate(self.labels):
            line = {**_without(style(index), "marker", "ms", "mfc", "mec"), "label": label, "animated": True}
            (self.rate_lines[label],) = self.rates.ax.plot([], [], **line)
            (self.loss_lines[label],) = self.losses.ax.plot([], [], **line)
        self.rates.ax.legend(loc="lower left", fontsize=8, handlelength=3.2)
        self.message = self.rates.ax.text(0.03, 0.97, "", transform=self.rates.ax.transAxes, fontsize=9,
                                          va="top", ha="left", animated=True, zorder=30, color="#b00",
                                          bbox={"boxstyle": "round", "fc": "white", "ec": "0.6"})

    def update(self, curves, steps, message=""):
        for panel in (self.rates, self.losses):
            panel.show(int(steps), lambda ax=panel.ax: ax.set_xlim(0, steps))
        for label in self.labels:
            rates, losses = curves.get(label, ((), ()))
            self.rate_lines[label].set_data(np.arange(len(rates)), rates)
            self.loss_lines[label].set_data(np.arange(len(losses)), losses)
        text = wrap_message(message.splitlines(), width=MESSAGE_WIDTH - 6) if message else ""
        self.message.set_text(text)
        self.message.set_visible(bool(text))
        return self



def draw_landscape(ax, landscape, levels=14):
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
        drawn.add(ax.contour(grid_x, grid_y, positive, levels=contour_levels, cmap=CONTOUR_COLORS,
                             norm=LogNorm(), linewidths=0.8))
    else:
        drawn.add(ax.contour(grid_x, grid_y, heights, levels=levels, cmap=CONTOUR_COLORS, linewidths=0.8))
    for minimum in landscape.minima:
        drawn.add(ax.plot(*minimum[:2], "*", color="gold", mec="k", ms=13, zorder=3)[0])
    for saddle in landscape.saddles:
        drawn.add(ax.plot(*saddle[:2], "P", color="w", mec="k", ms=9, zorder=3)[0])
    ax.set_xlim(*landscape.xlim)
    ax.set_ylim(*landscape.ylim)
    ax.xaxis.set_major_locator(MaxNLocator(4))
    ax.yaxis.set_major_locator(MaxNLocator(4))
    return drawn


class _Drawn(list):
    def add(self, artist):
        self.append(artist)

    def remove(self):
        for artist in self:
            artist.remove()


def curve_figure(x, curves, xlabel, ylabel, logx=False, logy=False, title=None, figsize=(5.5, 3.4), marks=(),
                 colors=None):
    """A static figure of ``curves`` (label -> y values, or label -> (y, style)) against ``x``; ``marks`` are x
    positions drawn as dashed vertical lines (e.g. the steps where a schedule decays); ``colors``, if given,
    colour the curves in turn (e.g. ``COLORS``; leave colour letters out of the styles then, and the styles
    given are kept as they are); without them, the curves take the palette in turn and its solid lines get
    dash patterns of their own."""
    figure = NotebookFigure(figsize=figsize, dpi=90, layout="constrained")
    ax = figure.subplots()
    ax.set_prop_cycle(color=COLORS)
    for mark in marks:
        ax.axvline(mark, color="0.5", ls="--", lw=1)
    for index, (label, values) in enumerate(curves.items()):
        y, style = values if isinstance(values, tuple) else (values, "-o")
        color = {} if colors is None else {"color": colors[index % len(colors)]}
        ax.plot(x, y, style, label=label, ms=4, **color)
    ax.set(xlabel=xlabel, ylabel=ylabel, xscale="log" if logx else "linear", yscale="log" if logy else "linear")
    if colors is None:
        _distinguish(ax.get_lines())
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return figure


def _distinguish(lines):
    """Give the solid lines that took the palette's colours (not a reference drawn in black, say, nor a
    mark) dash patterns of their own, in turn, so that curves differ by more than their colour."""
    palette = [line for line in lines if line.get_color() in COLORS and line.get_linestyle() == "-"]
    for index, line in enumerate(palette):
        line.set_linestyle(LINE_STYLES[index % len(LINE_STYLES)])


# ---- Notebook 06: ensembles and weight averages ----------------------------------------------------------------
# Each curve has an Okabe-Ito colour and a line style or marker of its own.


def _headroom(low, high, fraction=0.08):
    pad = (high - low) * fraction or 0.01
    return low - pad, high + pad


class EnsemblePicture(_SideBySide):
    """Test accuracy (left) and NLL (right) of the ensemble of the first K members, against K; each member's
    own score as a dot at its index and the mean member as a dotted line.

    The axes are the same for every set of members (they span every value in ``accuracy_range`` and
    ``nll_range``) and drawn once: a change of K or of the set of members redraws only the data.
    ``update(member_nll, member_accuracy, ensemble_nll, ensemble_accuracy, size)`` draws the ensemble's curve
    up to ``size``.
    """

    def __init__(self, members, accuracy_range, nll_range, height=3.2, dpi=72):
        margins = {"left": 0.15, "right": 0.97, "bottom": 0.16, "top": 0.9}
        self.accuracy = _Panel((4.6, height), dpi, margins)
        self.nll = _Panel((4.6, height), dpi, margins)
        self.panels = (self.accuracy, self.nll)
        self.curves, self.heads, self.dots, self.means = {}, {}, {}, {}
        for name, panel, limits, title in (
                ("accuracy", self.accuracy, _headroom(np.min(accuracy_range), np.max(accuracy_range), 0.1),
                 "test accuracy (higher is better)"),
                ("nll", self.nll, _headroom(np.min(nll_range), np.max(nll_range), 0.1),
                 "test NLL (lower is better)")):
            ax = panel.ax
            (self.dots[name],) = ax.plot([], [], "o", color=OKABE_ITO["orange"], mec="k", ms=7, ls="none",
                                         label="each member on its own", animated=True, zorder=3)
            self.means[name] = ax.axhline(0, color=OKABE_ITO["vermillion"], ls=":", lw=1.8, label="mean member",
                                          animated=True)
            (self.curves[name],) = ax.plot([], [], "-s", color=OKABE_ITO["blue"], lw=2, ms=5,
                                           label="ensemble of the first K", animated=True, zorder=4)
            (self.heads[name],) = ax.plot([], [], "s", color=OKABE_ITO["blue"], ms=11, mec="k", animated=True,
                                          zorder=5)
            ax.set(xlim=(0.5, members + 0.5), ylim=limits, xticks=np.arange(1, members + 1),
                   xlabel="ensemble size K (members)")
            ax.set_title(title, fontsize=10)
            ax.grid(True, alpha=0.3)
            ax.legend(loc="upper right" if name == "nll" else "lower right", fontsize=8, framealpha=0.9)
            panel.show("axes", lambda: None)

    def update(self, member_nll, member_accuracy, ensemble_nll, ensemble_accuracy, size):
        values = {"accuracy": (np.asarray(member_accuracy), np.asarray(ensemble_accuracy)),
                  "nll": (np.asarray(member_nll), np.asarray(ensemble_nll))}
        for name, (own, ensemble) in values.items():
            self.dots[name].set_data(np.arange(1, len(own) + 1), own)
            self.means[name].set_ydata([own.mean(), own.mean()])
            self.curves[name].set_data(np.arange(1, size + 1), ensemble[:size])
            self.heads[name].set_data([size], [ensemble[size - 1]])
        return self


class AveragingPicture(_SideBySide):
    """Left: the test loss of the trained weights, of their exponential moving average for one decay and of
    their uniform average, against the step. Right: the final test loss against the decay (all decays
    measured), the chosen one marked, with the trained weights' and the uniform average's as lines.

    Everything but the chosen decay's curve and marks is drawn once. ``update(steps, averaged, decay, final,
    better_from)``: ``better_from`` is the first step at which the average's loss is below the trained
    weights' (None: never), marked on the left by a dotted line.
    """

    def __init__(self, steps, raw, uniform, decays, finals, height=3.4, dpi=72, loss_limits=(0.8, 2.5)):
        self.curve = _Panel((5.4, height), dpi, {"left": 0.13, "right": 0.97, "bottom": 0.15, "top": 0.9})
        self.final = _Panel((4.2, height), dpi, {"left": 0.17, "right": 0.96, "bottom": 0.17, "top": 0.9})
        self.panels = (self.curve, self.final)
        ax = self.curve.ax
        ax.plot(steps, raw, "-", color=OKABE_ITO["black"], lw=1.2, alpha=0.75, label="trained weights x")
        ax.plot(steps, uniform, "--", color=OKABE_ITO["green"], lw=2, label="uniform average")
        (self.averaged,) = ax.plot([], [], "-", color=OKABE_ITO["blue"], lw=2.4, label="moving average x_test",
                                   animated=True, zorder=4)
        self.better = ax.axvline(0, color=OKABE_ITO["vermillion"], ls=":", lw=1.5, animated=True,
                                 label="first below the trained weights")
        ax.set(xlim=(0, steps[-1]), ylim=loss_limits, xlabel="step", ylabel="test loss")
        ax.set_title("test loss during training (constant learning rate)", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
        windows = 1 / (1 - np.asarray(decays, dtype=float))
        fx = self.final.ax
        fx.plot(windows, finals, "-o", color=OKABE_ITO["blue"], ms=5, label="moving average")
        fx.axhline(raw[-1], color=OKABE_ITO["black"], lw=1.2, label="trained weights")
        fx.axhline(uniform[-1], color=OKABE_ITO["green"], ls="--", lw=2, label="uniform average")
        fx.set_xscale("log")
        fx.set_xticks(windows, [f"{d:g}" for d in decays], fontsize=7)
        fx.xaxis.set_minor_locator(NullLocator())
        fx.set(xlabel="decay (memory ≈ 1 / (1 - decay) steps)", ylabel="final test loss",
               ylim=_headroom(min(min(finals), uniform[-1], raw[-1]), max(max(finals), raw[-1]), 0.15))
        fx.set_title("final test loss against the decay", fontsize=10)
        fx.grid(True, alpha=0.3)
        fx.legend(loc="upper center", fontsize=8, framealpha=0.9)
        (self.chosen,) = fx.plot([], [], "o", color=OKABE_ITO["blue"], ms=13, mec="k", animated=True, zorder=5)
        self.curve.show("static", lambda: None)
        self.final.show("static", lambda: None)

    def update(self, steps, averaged, decay, final, better_from):
        self.averaged.set_data(steps, averaged)
        self.chosen.set_data([1 / (1 - decay)], [final])
        self.better.set_xdata([better_from or 0, better_from or 0])
        self.better.set_visible(better_from is not None)
        return self


# ---- Regularization (notebooks 07-08): dropout's masks, augmented examples -------------------------------------
_SCALE_LEVELS = (1.25, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0)


def _ceiling(value, base):
    """The smallest ``base * level`` (level from _SCALE_LEVELS) at or above ``value``: few axis ranges, each
    kept as a picture."""
    return base * next((level for level in _SCALE_LEVELS if base * level >= 1.05 * value), _SCALE_LEVELS[-1])


class DropoutPicture(_SideBySide):
    """A layer's activations under dropout. Left: one training pass (bars; dropped units marked x on the axis)
    over the activations without dropout (outline). Right: the average of M training passes (bars) over what
    the layer outputs at test time (outline).

    ``update(one_pass, dropped, average, test_output, reference, title_right)``: arrays of one value per unit;
    ``reference`` (the activations without dropout) sets the vertical scale.
    """

    def __init__(self, units, height=3.2, dpi=72):
        margins = {"left": 0.12, "right": 0.98, "bottom": 0.14, "top": 0.9}
        self.one = _Panel((4.8, height), dpi, margins)
        self.average = _Panel((4.8, height), dpi, margins)
        self.panels = (self.one, self.average)
        positions = np.arange(units)
        self._edges = np.stack([positions - 0.4, positions + 0.4], axis=1).reshape(-1)
        self.bars, self.outlines = {}, {}
        for panel, color in ((self.one, COLORS[0]), (self.average, COLORS[2])):
            panel.ax.set(xlabel="unit", xlim=(-0.7, units - 0.3))
            panel.ax.grid(True, axis="y", alpha=0.3)
            # The bars are one filled step patch (bar, gap, bar, ...): one artist draws far faster than 32 patches.
            self.bars[panel] = panel.ax.stairs(np.zeros(2 * units - 1), self._edges, fill=True, color=color,
                                               animated=True)
            (self.outlines[panel],) = panel.ax.plot(positions, np.zeros(units), "_", color="k", ms=9, mew=2.2,
                                                    animated=True, zorder=4)
        self.one.ax.set_title("one training pass (black ticks: no dropout)", fontsize=10)
        (self.crosses,) = self.one.ax.plot([], [], "x", color=COLORS[1], ms=7, mew=2, animated=True, zorder=5)
        self.average.ax.set_title("", fontsize=10)
        self._title_right = ""

    def update(self, one_pass, dropped, average, test_output, reference, title_right):
        top = float(np.max(reference)) if np.max(reference) > 0 else 1.0
        needed = max(float(np.max(one_pass)), float(np.max(average)), float(np.max(test_output)), top)
        for panel in self.panels:
            limit = _ceiling(needed, top)
            key = (limit, title_right) if panel is self.average else limit

            def set_limits(ax=panel.ax, limit=limit, panel=panel):
                ax.set_ylim(0, limit)
                if panel is self.average:
                    ax.set_title(title_right, fontsize=10)
            panel.show(key, set_limits)
        for panel, heights, outline in ((self.one, one_pass, reference), (self.average, average, test_output)):
            with_gaps = np.zeros(2 * len(heights) - 1)
            with_gaps[::2] = heights
            self.bars[panel].set_data(with_gaps)
            self.outlines[panel].set_ydata(outline)
        positions = np.flatnonzero(dropped)
        self.crosses.set_data(positions, np.zeros(len(positions)))
        return self


class AugmentationPicture(_SideBySide):
    """Left: one training signal (black) and a few randomly augmented copies of it. Right: the test accuracy a
    precomputed sweep reached for each augmentation strength, the chosen strength marked; ``band`` = (lowest,
    highest) shades the range over several runs around ``accuracies`` (their mean).

    ``update(original, augmented, strength)``: ``augmented`` is a list of signals.
    """

    def __init__(self, strengths, accuracies, length, copies, strength_label, signal_limits, height=3.2, dpi=72,
                 band=None):
        margins = {"left": 0.13, "right": 0.98, "bottom": 0.15, "top": 0.9}
        self.signals = _Panel((4.8, height), dpi, margins)
        self.sweep = _Panel((4.2, height), dpi, margins)
        self.panels = (self.signals, self.sweep)
        ax = self.signals.ax
        ax.set(xlabel="sample", title="a training signal (black) and augmented copies", xlim=(0, length - 1),
               ylim=signal_limits)
        ax.title.set_fontsize(10)
        ax.grid(True, alpha=0.3)
        styles = ("-", "--", ":", "-.")
        self.copy_lines = [ax.plot([], [], styles[i % len(styles)], color=COLORS[i % 6], lw=1.4,
                                   animated=True)[0] for i in range(copies)]
        (self.original_line,) = ax.plot([], [], "-", color="k", lw=2.4, animated=True, zorder=5)
        ax = self.sweep.ax
        strengths, accuracies = np.asarray(strengths), np.asarray(accuracies)
        label = "trained with augmentation" + (" (mean, lowest to highest)" if band is not None else "")
        ax.plot(strengths, accuracies, "-o", color=COLORS[0], ms=5, label=label)
        low, high = float(accuracies.min()), float(accuracies.max())
        if band is not None:
            ax.fill_between(strengths, band[0], band[1], color=COLORS[0], alpha=0.2, lw=0)
            low, high = float(np.min(band[0])), float(np.max(band[1]))
        ax.axhline(accuracies[strengths == 0][0] if (strengths == 0).any() else np.nan, color=COLORS[1],
                   ls="--", label="no augmentation")
        ax.set(xlabel=strength_label, ylabel="test accuracy", title="after training (precomputed)")
        ax.title.set_fontsize(10)
        ax.set_ylim(low - 0.15 * (high - low + 0.02), high + 0.35 * (high - low + 0.02))
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
        self.marker = ax.axvline(0, color=COLORS[3], lw=2.5, animated=True)
        self.signals.show("static", lambda: None)
        self.sweep.show("static", lambda: None)

    def update(self, original, augmented, strength):
        samples = np.arange(len(original))
        self.original_line.set_data(samples, original)
        for line, signal in zip(self.copy_lines, augmented, strict=True):
            line.set_data(samples, signal)
        self.marker.set_xdata([strength, strength])
        return self


def pooling_windows_figure(rows, input_size, kernel_size, labels):
    """Pooling windows along one dimension, one row of the figure per pattern: ``rows`` holds each pattern's
    window starts; each window [start, start + kernel_size) is a bar, consecutive windows drawn at two
    heights so that overlaps show. ``labels`` names the rows."""
    figure = NotebookFigure(figsize=(6.4, 0.55 * len(rows) + 0.9), dpi=90, layout="constrained")
    ax = figure.subplots()
    for row, starts in enumerate(rows):
        y = len(rows) - 1 - row
        for index, start in enumerate(starts):
            lift = 0.18 if index % 2 else -0.18
            ax.add_patch(Rectangle((start, y + lift - 0.13), kernel_size, 0.26, facecolor=COLORS[index % 2],
                                   edgecolor="k", lw=0.6, alpha=0.85))
        steps = np.diff(starts)
        ax.text(input_size + 0.3, y, f"steps {''.join(str(s) for s in steps)}", va="center", fontsize=8)
    ax.set(xlim=(-0.2, input_size + 4.2), ylim=(-0.6, len(rows) - 0.4), xlabel="input position")
    ax.set_yticks(range(len(rows)), labels[::-1], fontsize=8)
    ax.set_xticks(range(input_size + 1))
    ax.grid(True, axis="x", alpha=0.3)
    return figure


# ---- Batch normalization (notebook 09) -------------------------------------------------------------------------
# The pictures take the module's palette (COLORS) and line styles (LINE_STYLES) in order, so that they read without
# colour vision.


class BatchNoisePicture(_SideBySide):
    """Left: one example's batch-normalised value in many random training batches (a histogram), against its
    test-time value. Right: the spread of those values against the batch size (log-log), beside 1/sqrt(B).

    ``update(values, test_value, batch_size)``: ``values`` are the example's values over the batches.
    """

    BINS = np.linspace(-3.5, 3.5, 57)

    def __init__(self, batch_sizes, spreads, height=3.3, dpi=72):
        self.histogram = _Panel((4.8, height), dpi, {"left": 0.13, "right": 0.97, "bottom": 0.16, "top": 0.9})
        self.spread = _Panel((4.4, height), dpi, {"left": 0.16, "right": 0.97, "bottom": 0.16, "top": 0.9})
        self.panels = (self.histogram, self.spread)
        ax = self.histogram.ax
        ax.set(xlim=(self.BINS[0], self.BINS[-1]), ylim=(0, 1.4), xlabel="normalised value of the example",
               ylabel="share of batches (peak = 1)")
        ax.set_title("training mode: it depends on the batch", fontsize=10)
        ax.grid(True, alpha=0.3)
        self.bars = ax.stairs(np.zeros(len(self.BINS) - 1), self.BINS, fill=True, color=COLORS[0], alpha=0.6,
                              label="training batches", animated=True)
        self.test_line = ax.axvline(0, color=COLORS[1], ls="--", lw=2, label="test time (running averages)",
                                    animated=True)
        ax.set_yticks([0, 0.5, 1])
        ax.legend(handles=[self.bars, self.test_line], loc="upper center", ncol=2, fontsize=8)
        ax = self.spread.ax
        sizes = np.asarray(batch_sizes, dtype=float)
        ax.loglog(sizes, spreads, "o-", color=COLORS[0], label="measured spread")
        ax.loglog(sizes, spreads[len(sizes) // 2] * np.sqrt(sizes[len(sizes) // 2] / sizes), ":", color="k",
                  label="∝ 1/√B")
        ax.set(xlabel="batch size B", ylabel="spread over batches (std)")
        _plain_log_ticks(ax, "xy")
        ax.set_title("the noise shrinks like 1/√B", fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
        (self.marker,) = ax.plot([], [], "o", ms=11, mfc="none", mec=COLORS[1], mew=2, animated=True)

    def update(self, values, test_value, batch_size, spread):
        self.histogram.show("static", lambda: None)
        self.spread.show("static", lambda: None)
        counts, _ = np.histogram(np.clip(values, self.BINS[0], self.BINS[-1]), self.BINS)
        self.bars.set_data(counts / max(counts.max(), 1), self.BINS)
        self.test_line.set_xdata([test_value, test_value])
        self.marker.set_data([batch_size], [spread])
        return self


class LearningRatePicture(_SideBySide):
    """Left: the training loss of each run at one learning rate (running mean), with "diverged at step k".
    Right: every run's final test accuracy against the learning rate, the chosen rate marked.

    ``LearningRatePicture(sweep)`` takes a ``batch_norm.LearningRateSweep``; ``update(index)`` shows the
    runs at ``sweep.learning_rates[index]``.
    """

    WINDOW = 10

    def __init__(self, sweep, chance=0.1, height=3.4, dpi=72):
        self.sweep = sweep
        labels = list(sweep.histories)
        self.losses = _Panel((4.8, height), dpi, {"left": 0.14, "right": 0.97, "bottom": 0.15, "top": 0.9})
        self.accuracy = _Panel((4.6, height), dpi, {"left": 0.15, "right": 0.97, "bottom": 0.15, "top": 0.9})
        self.panels = (self.losses, self.accuracy)
        steps = max(len(history.step_loss) for runs in sweep.histories.values() for history in runs)
        ax = self.losses.ax
        ax.set(yscale="log", xlim=(0, steps), ylim=(0.5, 20), xlabel="step",
               ylabel=f"training loss (mean of {self.WINDOW} steps)")
        _plain_log_ticks(ax, "y")
        ax.grid(True, alpha=0.3)
        self.curves = {}
        for label, color, style in zip(labels, COLORS, LINE_STYLES, strict=False):
            (self.curves[label],) = ax.plot([], [], linestyle=style, color=color, lw=2, label=label,
                                            animated=True)
        ax.legend(loc="upper right", fontsize=8)
        self.title = ax.set_title("", fontsize=10, animated=True)
        self.message = ax.text(0.03, 0.04, "", transform=ax.transAxes, fontsize=10, va="bottom", ha="left",
                               animated=True, bbox={"boxstyle": "round", "fc": "white", "ec": "0.6"})
        ax = self.accuracy.ax
        rates = np.asarray(sweep.learning_rates, dtype=float)
        for label, color, style, marker in zip(labels, COLORS, LINE_STYLES, "os", strict=False):
            accuracy = sweep.accuracy(label)
            ax.plot(rates, accuracy, linestyle=style, marker=marker, color=color, lw=2, label=label)
            diverged = np.isnan(accuracy)
            if diverged.any():
                ax.plot(rates[diverged], np.full(diverged.sum(), 0.03), "x", color=color, ms=10, mew=2,
                        label=f"{label}: diverged")
        ax.axhline(chance, color="0.4", ls=":", lw=1.2, label="chance")
        ax.set(xscale="log", ylim=(0, max(0.65, np.nanmax([sweep.accuracy(lb) for lb in labels]) + 0.05)),
               xlabel="learning rate (plain SGD)", ylabel="final test accuracy")
        _plain_log_ticks(ax, "x")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
        self.rate_line = ax.axvline(rates[0], color="k", lw=1, alpha=0.5, animated=True)

    def update(self, index):
        self.losses.show("static", lambda: None)
        self.accuracy.show("static", lambda: None)
        rate = self.sweep.learning_rates[index]
        notes = []
        for label, curve in self.curves.items():
            history = self.sweep.histories[label][index]
            losses = np.asarray(history.step_loss, dtype=float)
            if len(losses) >= self.WINDOW:
                losses = np.convolve(losses, np.ones(self.WINDOW) / self.WINDOW, mode="valid")
            curve.set_data(np.arange(len(losses)) + (len(history.step_loss) - len(losses)), losses)
            if history.diverged_at is not None:
                notes.append(f"{label}: diverged at step {history.diverged_at}")
        self.title.set_text(f"learning rate {rate:g}")
        self.message.set_text("\n".join(notes))
        self.message.set_visible(bool(notes))
        self.rate_line.set_xdata([rate, rate])
        return self


def _plain_log_ticks(ax, which):
    """Log-scaled axes labelled 0.1, 1, 10 (plain text, no mathtext: it is slow to lay out)."""
    for name in which:
        axis = ax.xaxis if name == "x" else ax.yaxis
        axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.set_minor_locator(NullLocator())


# ---- Transfer learning (notebook 10) ---------------------------------------------------------------------------

class TransferPicture(_SideBySide):
    """Left: test accuracy against the training step for each regime at one number of labelled examples per
    class (mean over seeds, the band from the worst to the best seed). Right: the whole table, final test
    accuracy against the number of labelled examples per class, one line per regime (the same bands).

    ``TransferPicture(table)`` takes a ``transfer.TransferTable``; ``update(count)`` shows that count.
    """

    def __init__(self, table, height=3.5, dpi=72):
        self.table = table
        self.curves_panel = _Panel((4.9, height), dpi, {"left": 0.13, "right": 0.97, "bottom": 0.15, "top": 0.9})
        self.table_panel = _Panel((4.9, height), dpi, {"left": 0.13, "right": 0.97, "bottom": 0.15, "top": 0.9})
        self.panels = (self.curves_panel, self.table_panel)
        self.styles = {regime: (color, style, marker) for regime, color, style, marker in
                       zip(table.regimes, COLORS, LINE_STYLES, "osD^", strict=False)}
        steps = table.settings["steps"]
        points = len(table.curves(table.regimes[0], table.counts[0])[0])
        self.steps = np.linspace(steps / points, steps, points)
        ax = self.curves_panel.ax
        ax.set(xlim=(0, steps), ylim=(0, 1), xlabel="training step (Adam)", ylabel="test accuracy")
        ax.grid(True, alpha=0.3)
        self.title = ax.set_title("", fontsize=10, animated=True)
        self.lines, self.bands = {}, {}
        for regime, (color, style, marker) in self.styles.items():
            (self.lines[regime],) = ax.plot([], [], linestyle=style, marker=marker, ms=4, color=color, lw=2,
                                            label=regime, animated=True)
            for count in table.counts:  # made once: a slider move only shows one count's bands
                curves = table.curves(regime, count)
                self.bands[regime, count] = ax.fill_between(self.steps, curves.min(axis=0), curves.max(axis=0),
                                                            color=color, alpha=0.15, lw=0, animated=True,
                                                            visible=False)
        ax.legend(loc="lower right", fontsize=8)
        ax = self.table_panel.ax
        counts = np.asarray(table.counts, dtype=float)
        for regime, (color, style, marker) in self.styles.items():
            finals = [table.accuracy(regime, count) for count in table.counts]
            ax.plot(counts, [f.mean() for f in finals], linestyle=style, marker=marker, color=color, lw=2,
                    label=regime)
            ax.fill_between(counts, [f.min() for f in finals], [f.max() for f in finals], color=color, alpha=0.15,
                            lw=0)
        ax.set(xscale="log", ylim=(0, 1), xlabel="labelled examples per class (N)",
               ylabel=f"final test accuracy ({len(table.settings['seeds'])} seeds)")
        ax.set_xticks(counts)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_title("the whole table", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
        self.count_line = ax.axvline(counts[0], color="k", lw=1, alpha=0.5, animated=True)

    def update(self, count):
        self.curves_panel.show("static", lambda: None)
        self.table_panel.show("static", lambda: None)
        for (_, band_count), band in self.bands.items():
            band.set_visible(band_count == count)
        for regime in self.styles:
            self.lines[regime].set_data(self.steps, self.table.curves(regime, count).mean(axis=0))
        self.title.set_text(f"N = {count} labelled examples per class")
        self.count_line.set_xdata([count, count])
        return self
