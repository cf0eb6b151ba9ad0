"""The image routes: upload an image, download one, delete one.

(No `from __future__ import annotations`: FastAPI reads the routes' annotations at run time; Svc, DB
and Auth are the `Annotated[..., Depends()]` aliases of auth.py.)
"""

from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile
from sqlalchemy import delete

from drc.serve.auth import DB, Auth, Svc
from drc.serve.errors import bad
from drc.serve.imagestore import read_uploads, remove_files_unreferenced, store_images
from drc.serve.queries import get_image, get_user
from drc.serve.schemas import ImageOut, image_out
from drc.serve.tables import HistoryItem

router = APIRouter(tags=["images"])


@router.post("/v1/images", status_code=201)
def upload_image(
    svc: Svc,
    t: Auth,
    s: DB,
    file: Annotated[UploadFile, File(description="a PNG, JPEG, WebP, GIF or BMP image")],
    user_id: Annotated[
        str | None, Form(description="tie the image to an end user (deleted with them)")
    ] = None,
) -> ImageOut:
    """Upload an image (a reference, or an explicit history) without adding it to a history."""
    if user_id:
        get_user(s, t, user_id)
    checked = read_uploads(svc, [file])
    (im,) = store_images(svc, s, t, checked, user_id or None)
    s.commit()
    return image_out(im)


@router.get(
    "/v1/images/{image_id}",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
def download_image(svc: Svc, image_id: str, t: Auth, s: DB) -> Response:
    im = get_image(s, t, image_id)
    try:
        data = svc.store.read(im.sha256)
    except FileNotFoundError as e:
        raise bad(410, f"image {image_id!r}: its file is gone") from e
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


@router.delete("/v1/images/{image_id}", status_code=204)
def delete_image(svc: Svc, image_id: str, t: Auth, s: DB) -> Response:
    """Delete an image (an upload or an output): its row, its place in any history, and its file
    when nothing else uses it. A queued job that needs it fails; a finished job's link answers 404."""
    im = get_image(s, t, image_id)
    sha = im.sha256
    s.execute(delete(HistoryItem).where(HistoryItem.image_id == im.id))
    s.delete(im)
    s.commit()
    remove_files_unreferenced(svc, s, {sha})
    return Response(status_code=204)
