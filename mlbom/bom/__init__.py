"""BOM assembly and output: `assemble` turns gathered facts into a CycloneDX document
(the library's data model plus the ML parts it does not model), `document` serializes
and validates it against the official schema before anything is written."""
