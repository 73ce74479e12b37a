"""Everything people read: the rows and text tables, the charts, report.html and the README's figures.

All of it is made from a bundle's result files (:mod:`edgecnn.bundle.results`),
never from a model runtime, so every view shows the same numbers.
"""
