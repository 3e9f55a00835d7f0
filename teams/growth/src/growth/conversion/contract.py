"""The conversion data contracts (team-owned)."""

from typing import Annotated

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from growth.conversion.spec import REGIONS

DEVICES = ("desktop", "mobile", "tablet")


class ConversionRecord(pa.DataFrameModel):
    """One web session as the retail export lands it.

    Coercion is per column, not frame-wide: a CSV reader hands over strings, and casting a string
    column to bool turns every non-empty value ("no" too) into True. ``returning_customer`` is
    therefore not coerced: CSV readers already parse True/False, and anything else fails its type.
    """

    session_id: Series[str] = pa.Field(coerce=True)
    event_time: Series[Annotated[pd.DatetimeTZDtype, "ns", "UTC"]] = pa.Field(coerce=True)
    region: Series[str] = pa.Field(isin=list(REGIONS), coerce=True)
    device: Series[str] = pa.Field(isin=list(DEVICES), coerce=True)
    price: Series[float] = pa.Field(gt=0, coerce=True)
    discount: Series[float] = pa.Field(ge=0.0, le=0.9, coerce=True)
    pages_viewed: Series[int] = pa.Field(ge=1, coerce=True)
    time_on_site_s: Series[float] = pa.Field(ge=0.0, coerce=True)
    returning_customer: Series[bool]
    converted: Series[int] = pa.Field(coerce=True)

    class Config:
        strict = True


class ConversionFeatures(ConversionRecord):
    """The feature frame: the raw contract plus the recorded split."""

    split: Series[str] = pa.Field(isin=["train", "test"])
