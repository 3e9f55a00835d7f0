"""The iris data contracts (team-owned)."""

import pandera.pandas as pa
from pandera.typing import Series


class IrisRecord(pa.DataFrameModel):
    """One measured flower as it lands: four positive lengths in centimetres and the species."""

    sample_id: Series[str]
    sepal_length: Series[float] = pa.Field(gt=0, le=30)
    sepal_width: Series[float] = pa.Field(gt=0, le=30)
    petal_length: Series[float] = pa.Field(gt=0, le=30)
    petal_width: Series[float] = pa.Field(gt=0, le=30)
    species: Series[str]

    class Config:
        strict = True
        coerce = True


class IrisFeatures(IrisRecord):
    """The feature frame: the raw contract plus the recorded split."""

    split: Series[str] = pa.Field(isin=["train", "test"])
