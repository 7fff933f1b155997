"""Facts about the challenge that every module shares."""

CLASSES: tuple[str, ...] = (
    "no_data",
    "clouds",
    "artificial",
    "cultivated",
    "broadleaf",
    "coniferous",
    "herbaceous",
    "natural",
    "snow",
    "water",
)
N_CLASSES = len(CLASSES)
IGNORED_CLASSES: tuple[str, ...] = ("no_data", "clouds")  # dropped by the metric
SCORED_CLASSES: tuple[str, ...] = CLASSES[2:]
ID_COLUMN = "sample_id"
FOLD_COLUMN = "fold"
SUBMISSION_COLUMNS: tuple[str, ...] = (ID_COLUMN, *CLASSES)

N_BANDS = 4
# Sample ids are a raster of tiles, 45 to a row in the official data (id i + 45 is the tile below
# id i): measured on the full y_train, label distance dips at lag 45 everywhere in the id range.
OFFICIAL_ROW_WIDTH = 45
PATCH_SIZE = 256
EPS = 1e-8  # the challenge page's epsilon (the organisers' benchmark repository used 1e-7)

# Official pixel counts per class over the full train set (18,491 patches), from the
# challenge's data description; used as the class prior and for inverse-frequency weights.
OFFICIAL_PIXEL_COUNTS: tuple[int, ...] = (
    0,
    20643,
    60971025,
    404760981,
    277012377,
    96473046,
    333407133,
    9775295,
    1071,
    29404605,
)

# Class palette for masks, fixed so that every notebook reads the same.
CLASS_COLORS: tuple[str, ...] = (
    "#000000",  # no_data
    "#b39ddb",  # clouds
    "#db1e2a",  # artificial
    "#fdd327",  # cultivated
    "#75cc6f",  # broadleaf
    "#069af3",  # coniferous
    "#566492",  # herbaceous
    "#8c8b8b",  # natural
    "#80deea",  # snow
    "#1b2fbb",  # water
)
