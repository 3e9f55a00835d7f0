"""The conversion data contracts (team-owned)."""

from typing import Annotated

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from ml_platform.models.conversion.spec import REGIONS

DEVICES = ("desktop", "mobile", "tablet")


class ConversionRecord(pa.DataFrameModel):
    """One web session as the retail export lands it."""

    session_id: Series[str]
    event_time: Series[Annotated[pd.DatetimeTZDtype, "ns", "UTC"]]
    region: Series[str] = pa.Field(isin=list(REGIONS))
    device: Series[str] = pa.Field(isin=list(DEVICES))
    price: Series[float] = pa.Field(gt=0)
    discount: Series[float] = pa.Field(ge=0.0, le=0.9)
    pages_viewed: Series[int] = pa.Field(ge=1)
    time_on_site_s: Series[float] = pa.Field(ge=0.0)
    returning_customer: Series[bool]
    converted: Series[int]

    class Config:
        strict = True
        coerce = True


class ConversionFeatures(ConversionRecord):
    """The feature frame: the raw contract plus the recorded split."""

    split: Series[str] = pa.Field(isin=["train", "test"])
