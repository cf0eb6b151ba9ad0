"""The API's request and reply bodies (pydantic), and the replies built from the rows.

(No `from __future__ import annotations`: pydantic and FastAPI read these annotations at run time.)
"""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from drc.serve.tables import EndUser, Feedback, HistoryItem, Job, StoredImage, utc


def no_nul(v: str) -> str:
    # PostgreSQL text cannot hold NUL (SQLite can): refused here, so both databases answer the same 422
    if "\x00" in v:
        raise ValueError("must not contain NUL characters")
    return v


# request bodies are strict: no coercion (`"n": true` or `"n": "4"` is refused, not read as 1 or 4),
# and every string is bounded and NUL-free before the database sees it
Text = Annotated[str, StringConstraints(max_length=10_000), AfterValidator(no_nul)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
STRICT = ConfigDict(extra="forbid", strict=True)


class UserIn(BaseModel):
    model_config = STRICT
    name: Text = Field(description="a display name for the end user (need not be unique)")


class UserOut(BaseModel):
    id: str
    name: str
    created_at: datetime
    history_count: int


class ImageOut(BaseModel):
    id: str
    url: str
    width: int
    height: int
    kind: str


class HistoryImageOut(ImageOut):
    position: int


class GenerateIn(BaseModel):
    model_config = STRICT
    run: Text | None = Field(None, description="a served run's name; default: the first one served")
    user_id: Id | None = Field(None, description="take the history from this end user (most recent last)")
    history: list[Id] | None = Field(
        None, max_length=10_000, description="or: image ids, oldest first (from POST /v1/images)"
    )
    reference: Id = Field(description="image id of the reference: what to show")
    prompt: Text | None = Field(None, description="the prompt text; default: the run's own prompt")
    n: int = Field(4, description="images to generate")
    seed: int = Field(
        0, description="image i is sampled from a stream keyed by (seed, the inputs, i), as by `drc generate`"
    )
    explain: bool = Field(False, description="also compute each history image's leave-one-out influence")


class ImageRef(BaseModel):
    id: str
    url: str


class OutputRef(ImageRef):
    verdict: Literal["keep", "discard"] | None = Field(
        None, description="the end user's verdict on this output (POST /v1/jobs/{id}/feedback)"
    )


class FeedbackIn(BaseModel):
    model_config = STRICT
    image: Annotated[int, Field(ge=0)] | Id = Field(
        description="the output: its index in the job's images (from 0), or its image id"
    )
    verdict: Literal["keep", "discard"] = Field(description="keep the output, or discard it")


class FeedbackOut(BaseModel):
    job_id: str
    image_index: int
    image_id: str
    verdict: str
    kept_at: datetime | None = Field(description="when the output became kept (null while discarded)")
    created_at: datetime = Field(description="the first verdict on this output")
    updated_at: datetime = Field(description="the last verdict (the one in force)")


class HistoryEntryOut(BaseModel):
    image_id: str
    url: str
    weight: float | None
    influence: dict[str, float] | None


class JobOut(BaseModel):
    id: str
    status: str
    run: str
    user_id: str | None
    prompt: str | None
    n: int
    seed: int
    explain: bool
    reference: ImageRef
    history: list[HistoryEntryOut]
    images: list[OutputRef]
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    batch_images: int | None = Field(None, description="rows of the sampling batch the job shared")
    sample_ms: float | None
    retries: int = Field(0, description="times the job was queued again because its worker stopped")


def image_url(image_id: str) -> str:
    return f"/v1/images/{image_id}"


def user_out(s: Session, u: EndUser) -> UserOut:
    count = s.scalar(select(func.count()).select_from(HistoryItem).where(HistoryItem.user_id == u.id))
    return UserOut(id=u.id, name=u.name, created_at=utc(u.created_at), history_count=int(count or 0))


def image_out(im: StoredImage) -> ImageOut:
    return ImageOut(id=im.id, url=image_url(im.id), width=im.width, height=im.height, kind=im.kind)


def job_out(s: Session, job: Job) -> JobOut:
    weights = job.weights or [None] * len(job.history_ids)
    influence = job.influence or [None] * len(job.history_ids)
    verdicts = (
        dict(s.execute(select(Feedback.image_index, Feedback.verdict).where(Feedback.job_id == job.id)).all())
        if job.output_ids
        else {}
    )
    return JobOut(
        id=job.id,
        status=job.status,
        run=job.run,
        user_id=job.user_id,
        prompt=job.prompt,
        n=job.n,
        seed=job.seed,
        explain=bool(job.explain),
        reference=ImageRef(id=job.reference_id, url=image_url(job.reference_id)),
        history=[
            HistoryEntryOut(image_id=i, url=image_url(i), weight=w, influence=inf)
            for i, w, inf in zip(job.history_ids, weights, influence)
        ],
        images=[
            OutputRef(id=i, url=image_url(i), verdict=verdicts.get(k))
            for k, i in enumerate(job.output_ids or [])
        ],
        error=job.error,
        created_at=utc(job.created_at),
        started_at=utc(job.started_at),
        finished_at=utc(job.finished_at),
        batch_images=job.batch_images,
        sample_ms=job.sample_ms,
        retries=job.retries or 0,
    )


def feedback_out(f: Feedback) -> FeedbackOut:
    return FeedbackOut(
        job_id=f.job_id,
        image_index=f.image_index,
        image_id=f.image_id,
        verdict=f.verdict,
        kept_at=utc(f.kept_at),
        created_at=utc(f.created_at),
        updated_at=utc(f.updated_at),
    )
