"""The end-user routes: create, list, read and delete end users, and their image histories.

(No `from __future__ import annotations`: FastAPI reads the routes' annotations at run time; Svc, DB
and Auth are the `Annotated[..., Depends()]` aliases of auth.py.)
"""

from typing import Annotated

from fastapi import APIRouter, File, Response, UploadFile
from sqlalchemy import delete, select

from drc.serve import quotas
from drc.serve.auth import DB, Auth, Svc
from drc.serve.errors import bad, not_found
from drc.serve.imagestore import read_uploads, remove_files_unreferenced, store_images
from drc.serve.queries import get_user, is_id, user_history
from drc.serve.schemas import HistoryImageOut, UserIn, UserOut, image_out, user_out
from drc.serve.tables import EndUser, HistoryItem, Job, StoredImage

router = APIRouter(tags=["users"])


@router.post("/v1/users", status_code=201)
def create_user(svc: Svc, body: UserIn, t: Auth, s: DB) -> UserOut:
    name = body.name.strip()
    if not name:
        raise bad(422, "name: must not be empty")
    if len(name) > svc.config.limits.max_name_chars:
        raise bad(422, f"name: {len(name)} characters, over the limit of {svc.config.limits.max_name_chars}")
    quotas.check_users(s, t, quotas.effective(t, svc.config.quotas))
    u = EndUser(tenant_id=t.id, name=name)
    s.add(u)
    s.commit()
    return user_out(s, u)


@router.get("/v1/users")
def list_users(t: Auth, s: DB) -> list[UserOut]:
    users = s.scalars(select(EndUser).where(EndUser.tenant_id == t.id).order_by(EndUser.created_at)).all()
    return [user_out(s, u) for u in users]


@router.get("/v1/users/{user_id}")
def read_user(user_id: str, t: Auth, s: DB) -> UserOut:
    return user_out(s, get_user(s, t, user_id))


@router.delete("/v1/users/{user_id}", status_code=204)
def delete_user(svc: Svc, user_id: str, t: Auth, s: DB) -> Response:
    """Delete the end user with their history, jobs, generated images and every file of them."""
    u = get_user(s, t, user_id)
    images = s.scalars(select(StoredImage).where(StoredImage.user_id == u.id)).all()
    shas = {im.sha256 for im in images}
    s.execute(delete(HistoryItem).where(HistoryItem.user_id == u.id))
    s.execute(delete(Job).where(Job.user_id == u.id))
    s.execute(delete(StoredImage).where(StoredImage.user_id == u.id))
    s.delete(u)
    s.commit()
    remove_files_unreferenced(svc, s, shas)
    return Response(status_code=204)


@router.post("/v1/users/{user_id}/history", status_code=201)
def add_history(
    svc: Svc,
    user_id: str,
    t: Auth,
    s: DB,
    files: Annotated[list[UploadFile], File(description="images, oldest first")],
) -> list[HistoryImageOut]:
    """Append images to the end user's history, in the order given (the last is the most recent)."""
    u = get_user(s, t, user_id)
    rows = user_history(s, u.id)
    limit = svc.config.limits.max_history
    if len(rows) + len(files) > limit:
        raise bad(
            422,
            f"history would hold {len(rows) + len(files)} images, over the limit of {limit} "
            f"(it has {len(rows)}); delete some first",
        )
    checked = read_uploads(svc, files)
    images = store_images(svc, s, t, checked, u.id)
    pos = max((h.position for h, _ in rows), default=-1) + 1
    items = [HistoryItem(user_id=u.id, image_id=im.id, position=pos + i) for i, im in enumerate(images)]
    s.add_all(items)
    s.commit()
    return [
        HistoryImageOut(**image_out(im).model_dump(), position=h.position) for h, im in zip(items, images)
    ]


@router.get("/v1/users/{user_id}/history")
def list_history(user_id: str, t: Auth, s: DB) -> list[HistoryImageOut]:
    u = get_user(s, t, user_id)
    return [
        HistoryImageOut(**image_out(im).model_dump(), position=h.position) for h, im in user_history(s, u.id)
    ]


@router.delete("/v1/users/{user_id}/history/{image_id}", status_code=204)
def delete_history_image(svc: Svc, user_id: str, image_id: str, t: Auth, s: DB) -> Response:
    """Remove one image from the history (and its file, when nothing else uses it)."""
    u = get_user(s, t, user_id)
    if not is_id(image_id):
        raise not_found("history image", image_id)
    item = s.scalar(select(HistoryItem).where(HistoryItem.user_id == u.id, HistoryItem.image_id == image_id))
    if item is None:
        raise not_found("history image", image_id)
    im = s.get(StoredImage, image_id)
    s.delete(item)
    sha = None
    if im is not None and im.tenant_id == t.id:
        sha = im.sha256
        s.delete(im)
    s.commit()
    if sha:
        remove_files_unreferenced(svc, s, {sha})
    return Response(status_code=204)
