"""Core ML models (`.mlmodel`): one protobuf `Model` message, walked at the wire level.

What is read: the specification version, the model type (the `Type` oneof's field number,
for a pipeline its models' types too), the metadata of the description (short description,
version, author, licence) and the class names of custom layers and custom models. A custom
layer or model needs a class compiled into the application, not code in the file: it is a
property, not a finding; a Core ML model file cannot run code of its own.

`.mlpackage` folders keep a `Manifest.json` (read as JSON elsewhere) beside a `.mlmodel`.
"""

from __future__ import annotations

from mlbom.errors import InspectionError
from mlbom.inspectors import Context, Inspection
from mlbom.inspectors.tensorflow import Pages, ProtoReader
from mlbom.models import FileFacts, ModelInfo
from mlbom.sources import Blob

FORMAT = "coreml"
EXECUTABLE = False
MAX_FIELDS = 5_000_000
MAX_MODELS = 1_000  # models of nested pipelines
MAX_DEPTH = 16  # pipeline nesting
MAX_CUSTOM = 100  # custom class names listed
MAX_TEXT = 1000

# the `Type` oneof of Model (coremltools mlmodel/format/Model.proto)
MODEL_TYPES = {
    200: "pipelineClassifier", 201: "pipelineRegressor", 202: "pipeline",
    300: "glmRegressor", 301: "supportVectorRegressor", 302: "treeEnsembleRegressor",
    303: "neuralNetworkRegressor", 304: "bayesianProbitRegressor",
    400: "glmClassifier", 401: "supportVectorClassifier", 402: "treeEnsembleClassifier",
    403: "neuralNetworkClassifier", 404: "kNearestNeighborsClassifier",
    500: "neuralNetwork", 501: "itemSimilarityRecommender", 502: "mlProgram",
    555: "customModel", 556: "linkedModel", 560: "classConfidenceThresholding",
    600: "oneHotEncoder", 601: "imputer", 602: "featureVectorizer", 603: "dictVectorizer",
    604: "scaler", 606: "categoricalMapping", 607: "normalizer",
    609: "arrayFeatureExtractor", 610: "nonMaximumSuppression", 900: "identity",
    2000: "textClassifier", 2001: "wordTagger", 2002: "visionFeaturePrint",
    2003: "soundAnalysisPreprocessing", 2004: "gazetteer", 2005: "wordEmbedding",
    2006: "audioFeaturePrint", 3000: "serializedModel",
}  # fmt: skip
_SPEC_VERSION, _DESCRIPTION = 1, 2
_PIPELINES = (200, 201)  # PipelineClassifier/PipelineRegressor: Pipeline pipeline = 1
_PIPELINE, _PIPELINE_MODELS = 202, 1
_NETWORKS = (303, 403, 500)  # NeuralNetwork*: repeated NeuralNetworkLayer layers = 1
_LAYERS, _LAYER_CUSTOM, _CLASS_NAME = 1, 500, 10  # CustomLayerParams/CustomModel className
_CUSTOM_MODEL, _LINKED_MODEL = 555, 556
_DESCRIPTION_METADATA = 100
_METADATA = {1: "description", 2: "version", 3: "author", 4: "license"}


def detect(head: bytes, path: str) -> bool:
    return path.endswith(".mlmodel") and head[:1] == b"\x08"


def inspect(blob: Blob, context: Context) -> Inspection:
    facts = FileFacts(format=FORMAT, structured=True)
    info = ModelInfo()
    with blob.open() as f:
        walk = _Walk(ProtoReader(Pages(f, blob.size), MAX_FIELDS), facts, info)
        walk.run(blob.size)
    return Inspection(facts, info)


class _Walk:
    def __init__(self, proto: ProtoReader, facts: FileFacts, info: ModelInfo) -> None:
        self.proto, self.facts, self.info = proto, facts, info
        self.custom: dict[tuple[str, str], None] = {}

    def run(self, size: int) -> None:
        props = self.facts.properties
        stack = [(0, size, 0)]
        models = 0
        while stack:
            start, end, depth = stack.pop()
            models += 1
            if models > MAX_MODELS or depth > MAX_DEPTH:
                raise InspectionError(
                    f"pipelines nest more than {MAX_MODELS} models or {MAX_DEPTH} levels"
                )
            kind: str | None = None
            for number, wire, value, at in self.proto.fields(start, end):
                if depth == 0 and number == _SPEC_VERSION and wire == 0:
                    props.append(("mlbom:coreml:spec-version", str(value)))
                elif depth == 0 and number == _DESCRIPTION and wire == 2:
                    self.description(at, at + value)
                elif number in MODEL_TYPES and wire == 2:
                    kind = MODEL_TYPES[number]
                    stack += [(s, e, depth + 1) for s, e in self.model(number, at, at + value)]
            if kind is None and depth == 0:
                raise InspectionError("not a Core ML model: no model type")
            if kind is not None:
                props.append(
                    (
                        "mlbom:coreml:model-type" if depth == 0 else "mlbom:coreml:pipeline-model",
                        kind,
                    )
                )
        props += [(f"mlbom:coreml:custom-{k}", n) for k, n in list(self.custom)[:MAX_CUSTOM]]

    def model(self, number: int, start: int, end: int) -> list[tuple[int, int]]:
        """The nested models of a pipeline; custom classes and links recorded on the way."""
        fields = self.proto.fields
        if number in _PIPELINES:
            for n, w, length, at in fields(start, end):
                if n == 1 and w == 2:
                    return self.model(_PIPELINE, at, at + length)
            return []
        if number == _PIPELINE:
            return [
                (at, at + ln)
                for n, w, ln, at in fields(start, end)
                if n == _PIPELINE_MODELS and w == 2
            ]
        if number in _NETWORKS:
            for n, w, length, at in fields(start, end):
                if n != _LAYERS or w != 2:
                    continue
                for n2, w2, l2, a2 in fields(at, at + length):
                    if n2 == _LAYER_CUSTOM and w2 == 2:
                        self.class_name("layer", a2, a2 + l2)
        elif number == _CUSTOM_MODEL:
            self.class_name("model", start, end)
        elif number == _LINKED_MODEL:
            # LinkedModel { LinkedModelFile linkedModelFile = 1 }, whose
            # linkedModelFileName = 1 is a StringParameter { string defaultValue = 1 }
            for n, w, length, at in fields(start, end):
                for n2, w2, l2, a2 in fields(at, at + length) if n == 1 and w == 2 else ():
                    for n3, w3, l3, a3 in fields(a2, a2 + l2) if n2 == 1 and w2 == 2 else ():
                        if n3 == 1 and w3 == 2:
                            name = self.proto.string(
                                a3, min(l3, MAX_TEXT), MAX_TEXT, "a linked model"
                            )
                            self.facts.properties.append(("mlbom:coreml:linked-model", name))
        return []

    def class_name(self, kind: str, start: int, end: int) -> None:
        for n, w, length, at in self.proto.fields(start, end):
            if n == _CLASS_NAME and w == 2:
                name = self.proto.string(at, min(length, MAX_TEXT), MAX_TEXT, "a class name")
                self.custom[(kind, name or "?")] = None

    def description(self, start: int, end: int) -> None:
        for n, w, length, at in self.proto.fields(start, end):
            if n != _DESCRIPTION_METADATA or w != 2:
                continue
            for n2, w2, l2, a2 in self.proto.fields(at, at + length):
                key = _METADATA.get(n2)
                if key is None or w2 != 2 or not l2:
                    continue
                value = self.proto.string(a2, min(l2, MAX_TEXT), MAX_TEXT, f"metadata {key}")
                if key == "description":
                    self.info.description = value
                elif key == "version":
                    self.info.version = value[:200]
                elif key == "license":
                    self.info.licenses.append(value[:200])
                else:
                    self.facts.properties.append(("mlbom:coreml:author", value[:200]))
