"""The synthetic landmarks: each a fixed arrangement of geometric primitives.

Every design draws into a square canvas in unit coordinates (x right, y down, the ground
line at y = 0.92), so one random viewpoint transform places any of them in a scene. The
designs differ in silhouette first (tall and thin, wide with a hole, round on top, ...)
and in palette second, so a small CNN separates them from shape even under colour jitter.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PIL import ImageDraw

RGB = tuple[int, int, int]
Palette = tuple[RGB, RGB, RGB]  # main, secondary, accent
Point = tuple[float, float]

GROUND = 0.92
CLEAR = (0, 0, 0, 0)  # drawing this into an RGBA layer cuts a transparent hole


class Pen:
    """Draws on an RGBA layer in unit coordinates scaled to the layer's size."""

    def __init__(self, draw: ImageDraw.ImageDraw, size: int) -> None:
        self.draw = draw
        self.s = size

    def _xy(self, points: Sequence[Point]) -> list[tuple[float, float]]:
        return [(x * self.s, y * self.s) for x, y in points]

    def poly(self, points: Sequence[Point], fill: RGB | tuple[int, ...]) -> None:
        self.draw.polygon(self._xy(points), fill=fill)

    def rect(self, x0: float, y0: float, x1: float, y1: float, fill: RGB | tuple[int, ...]) -> None:
        self.draw.rectangle(self._xy([(x0, y0), (x1, y1)]), fill=fill)

    def ellipse(
        self, x0: float, y0: float, x1: float, y1: float, fill: RGB | tuple[int, ...]
    ) -> None:
        self.draw.ellipse(self._xy([(x0, y0), (x1, y1)]), fill=fill)

    def chord(
        self, box: tuple[float, float, float, float], start: float, end: float, fill: RGB
    ) -> None:
        x0, y0, x1, y1 = box
        self.draw.chord(self._xy([(x0, y0), (x1, y1)]), start, end, fill=fill)

    def line(self, points: Sequence[Point], fill: RGB, width: float) -> None:
        self.draw.line(self._xy(points), fill=fill, width=max(1, round(width * self.s)))


def _tower(p: Pen, c: Palette) -> None:
    main, sec, acc = c
    p.poly([(0.2, GROUND), (0.8, GROUND), (0.53, 0.1), (0.47, 0.1)], main)
    p.ellipse(0.34, 0.7, 0.66, 1.14, CLEAR)  # the arch between the legs
    for y0 in (0.2, 0.3, 0.4, 0.5):  # lattice crosses
        half = 0.03 + (y0 - 0.1) * 0.37
        p.line([(0.5 - half, y0), (0.5 + half * 1.3, y0 + 0.1)], sec, 0.012)
        p.line([(0.5 + half, y0), (0.5 - half * 1.3, y0 + 0.1)], sec, 0.012)
    p.rect(0.27, 0.64, 0.73, 0.68, acc)
    p.rect(0.39, 0.4, 0.61, 0.43, acc)
    p.line([(0.5, 0.1), (0.5, 0.02)], main, 0.015)


def _arch(p: Pen, c: Palette) -> None:
    main, sec, acc = c
    p.rect(0.16, 0.34, 0.84, GROUND, main)
    p.rect(0.13, 0.25, 0.87, 0.34, sec)
    p.rect(0.16, 0.44, 0.84, 0.47, acc)
    p.rect(0.39, 0.62, 0.61, GROUND, CLEAR)
    p.ellipse(0.39, 0.51, 0.61, 0.73, CLEAR)
    for x in (0.22, 0.7):  # relief panels beside the opening
        p.rect(x, 0.55, x + 0.08, 0.8, sec)


def _dome(p: Pen, c: Palette) -> None:
    main, sec, acc = c
    p.rect(0.2, 0.62, 0.8, GROUND, main)
    p.rect(0.31, 0.5, 0.69, 0.62, sec)
    p.chord((0.29, 0.2, 0.71, 0.8), 180, 360, main)
    p.line([(0.5, 0.2), (0.5, 0.1)], acc, 0.02)
    p.ellipse(0.47, 0.07, 0.53, 0.13, acc)
    p.ellipse(0.43, 0.72, 0.57, 0.86, sec)
    p.rect(0.43, 0.79, 0.57, GROUND, sec)
    for x in (0.07, 0.86):  # minarets
        p.rect(x, 0.38, x + 0.07, GROUND, main)
        p.chord((x - 0.01, 0.33, x + 0.08, 0.43), 180, 360, acc)


def _pyramid(p: Pen, c: Palette) -> None:
    main, sec, acc = c
    p.poly([(0.06, GROUND), (0.94, GROUND), (0.5, 0.2)], main)
    p.poly([(0.5, 0.2), (0.94, GROUND), (0.64, GROUND)], sec)
    for i in range(1, 10):  # courses of stone
        y = 0.2 + i * 0.072
        half = (y - 0.2) / (GROUND - 0.2) * 0.44
        p.line([(0.5 - half, y), (0.5 + half, y)], acc, 0.006)


def _bridge(p: Pen, c: Palette) -> None:
    main, sec, acc = c
    p.rect(0.0, 0.78, 1.0, 1.0, acc)  # water
    p.rect(0.0, 0.64, 1.0, 0.69, main)
    for x in (0.25, 0.69):
        p.rect(x, 0.18, x + 0.06, 0.8, main)
        p.rect(x, 0.3, x + 0.06, 0.33, sec)
        p.rect(x, 0.46, x + 0.06, 0.49, sec)
    # Main cable: a parabola between the tower tops, sagging to the deck.
    cable = [(0.28 + t * 0.44, 0.2 + 0.42 * (1 - (2 * t - 1) ** 2)) for t in _steps(16)]
    p.line(cable, sec, 0.012)
    p.line([(0.0, 0.5), (0.28, 0.2)], sec, 0.012)
    p.line([(1.0, 0.5), (0.72, 0.2)], sec, 0.012)
    for x, y in cable[1:-1]:
        p.line([(x, y), (x, 0.64)], sec, 0.004)


def _skyline(p: Pen, c: Palette) -> None:
    main, sec, acc = c
    towers = [(0.06, 0.5), (0.19, 0.28), (0.34, 0.12), (0.5, 0.38), (0.64, 0.22), (0.8, 0.45)]
    for i, (x, top) in enumerate(towers):
        p.rect(x, top, x + 0.13, GROUND, main if i % 2 else sec)
        for wy in _frange(top + 0.04, GROUND - 0.04, 0.07):
            for wx in (x + 0.025, x + 0.075):
                p.rect(wx, wy, wx + 0.03, wy + 0.03, acc)
    p.line([(0.405, 0.12), (0.405, 0.02)], main, 0.012)


def _temple(p: Pen, c: Palette) -> None:
    main, sec, acc = c
    p.rect(0.08, 0.86, 0.92, GROUND, sec)
    p.rect(0.12, 0.8, 0.88, 0.86, main)
    for i in range(6):
        x = 0.16 + i * 0.13
        p.rect(x, 0.44, x + 0.06, 0.8, main)
    p.rect(0.12, 0.36, 0.88, 0.44, sec)
    p.poly([(0.1, 0.36), (0.9, 0.36), (0.5, 0.18)], main)
    p.poly([(0.2, 0.34), (0.8, 0.34), (0.5, 0.22)], acc)


def _windmill(p: Pen, c: Palette) -> None:
    main, sec, acc = c
    p.poly([(0.36, GROUND), (0.64, GROUND), (0.57, 0.38), (0.43, 0.38)], main)
    p.poly([(0.41, 0.39), (0.59, 0.39), (0.5, 0.27)], sec)
    p.rect(0.46, 0.78, 0.54, GROUND, sec)
    hub = (0.5, 0.36)
    for angle in (25, 115, 205, 295):
        a = math.radians(angle)
        ux, uy = math.cos(a), math.sin(a)
        nx, ny = -uy, ux
        near, far, w = 0.05, 0.36, 0.07
        p.poly(
            [
                (hub[0] + ux * near, hub[1] + uy * near),
                (hub[0] + ux * far, hub[1] + uy * far),
                (hub[0] + ux * far + nx * w, hub[1] + uy * far + ny * w),
                (hub[0] + ux * near + nx * w, hub[1] + uy * near + ny * w),
            ],
            acc,
        )
        p.line([hub, (hub[0] + ux * far, hub[1] + uy * far)], sec, 0.012)
    p.ellipse(0.47, 0.33, 0.53, 0.39, sec)


def _lighthouse(p: Pen, c: Palette) -> None:
    main, sec, acc = c
    p.rect(0.58, 0.76, 0.84, GROUND, main)
    p.poly([(0.56, 0.76), (0.86, 0.76), (0.71, 0.66)], sec)
    p.poly([(0.38, GROUND), (0.6, GROUND), (0.56, 0.26), (0.44, 0.26)], main)
    for i in range(4):  # stripes follow the taper of the tower
        y0, y1 = 0.3 + i * 0.16, 0.38 + i * 0.16

        def half(y: float) -> float:
            return 0.06 + (y - 0.26) / (GROUND - 0.26) * 0.05

        p.poly(
            [
                (0.5 - half(y0), y0),
                (0.5 + half(y0), y0),
                (0.5 + half(y1), y1),
                (0.5 - half(y1), y1),
            ],
            sec,
        )
    p.rect(0.41, 0.23, 0.59, 0.26, sec)
    p.rect(0.45, 0.13, 0.55, 0.23, acc)
    p.poly([(0.43, 0.13), (0.57, 0.13), (0.5, 0.06)], sec)


def _pagoda(p: Pen, c: Palette) -> None:
    main, sec, acc = c
    for i in range(5):
        bottom = GROUND - i * 0.145
        body = 0.2 - i * 0.03
        p.rect(0.5 - body, bottom - 0.08, 0.5 + body, bottom, main)
        eave = body + 0.1
        roof_y = bottom - 0.08
        p.poly(
            [
                (0.5 - eave, roof_y - 0.01),
                (0.5 - body, roof_y - 0.065),
                (0.5 + body, roof_y - 0.065),
                (0.5 + eave, roof_y - 0.01),
            ],
            sec,
        )
    p.line([(0.5, 0.27), (0.5, 0.08)], acc, 0.02)
    for y in (0.12, 0.16, 0.2):
        p.line([(0.47, y), (0.53, y)], acc, 0.01)


def _steps(n: int) -> list[float]:
    return [i / n for i in range(n + 1)]


def _frange(start: float, stop: float, step: float) -> list[float]:
    out = []
    value = start
    while value < stop:
        out.append(value)
        value += step
    return out


@dataclass(frozen=True)
class Design:
    """One landmark: its (fictional) Wikimedia category name, palette and drawing."""

    name: str
    palette: Palette
    draw: Callable[[Pen, Palette], None]


# Ordered so that the first few (the default of 6 classes) differ most in silhouette.
DESIGNS: tuple[Design, ...] = (
    Design("Iron_Tower_of_Valmont", ((112, 88, 68), (76, 58, 48), (205, 170, 90)), _tower),
    Design("Triumphal_Arch_of_Serelle", ((226, 214, 188), (188, 178, 156), (140, 118, 88)), _arch),
    Design("Great_Dome_of_Amaris", ((244, 244, 238), (208, 198, 182), (204, 160, 60)), _dome),
    Design("Pyramid_of_Khebet", ((216, 182, 112), (170, 134, 80), (122, 96, 60)), _pyramid),
    Design("Norrvik_Suspension_Bridge", ((192, 62, 42), (150, 44, 30), (64, 96, 146)), _bridge),
    Design("Port_Calder_Skyline", ((92, 104, 124), (62, 72, 92), (240, 222, 124)), _skyline),
    Design("Temple_of_Astrea", ((236, 230, 214), (200, 194, 178), (150, 140, 120)), _temple),
    Design("Oudekerk_Windmill", ((150, 72, 60), (88, 60, 40), (232, 230, 218)), _windmill),
    Design("Cape_Merrow_Lighthouse", ((246, 246, 246), (202, 42, 42), (250, 220, 80)), _lighthouse),
    Design("Shinrai_Pagoda", ((182, 42, 40), (58, 50, 50), (222, 182, 62)), _pagoda),
)
