"""mlbom audit: CRA compliance evidence for every model: which ML-BOMs exist, whether they
are valid, signed and complete (BSI TR-03183-2, the G7 minimum elements for AI), what the
admission webhook decided about them, and what is missing, as JSON, HTML and a signed ZIP."""
