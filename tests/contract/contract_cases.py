"""The query, documents and relevance every contract test uses."""

from rerankkit.types import Doc

QUERY = "how do rivers form deltas"
DOCS = [
    Doc("d0", "A delta forms where a river deposits sediment as it slows entering a lake or the sea."),
    Doc("d1", "Bread dough rises because yeast ferments sugars and releases carbon dioxide."),
    Doc("d2", "River deltas grow when the current drops its silt, building new land at the mouth."),
    Doc("d3", "The stock market closed higher on Friday after strong earnings reports."),
    Doc("d4", "Sediment carried by rivers settles in fan-shaped deposits called deltas."),
]
RELEVANCE = {"d0": 3.0, "d1": 0.0, "d2": 2.0, "d3": 0.0, "d4": 1.0}
BACKENDS = ["oracle", "hf", "openai"]
