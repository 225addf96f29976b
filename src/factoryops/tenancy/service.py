"""Sign-in, sessions, factories, users and the audit log.

Factory-level work runs in a factory-scoped session; the few cross-factory steps (finding a
factory by slug at sign-in, the platform root's console, the session table) use the explicit
``unscoped_session`` escape hatch and nothing else.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event, func, or_, select
from sqlalchemy.orm import Session

from factoryops.core.db import Database, utcnow
from factoryops.core.errors import ApiError, not_found
from factoryops.core.metrics import LOGIN_FAILURES
from factoryops.core.pagination import PageParams, paginate
from factoryops.core.security import (
    TokenClaims,
    check_password_policy,
    generate_password,
    hash_password,
    issue_access_token,
    new_refresh_token,
    token_hash,
    verify_password,
)
from factoryops.core.settings import Settings
from factoryops.tenancy import schemas
from factoryops.tenancy.models import (
    ALL_PERMISSIONS,
    AuditEvent,
    AuthSession,
    Factory,
    PlatformAdmin,
    PlatformAuditEvent,
    Role,
    User,
)

log = logging.getLogger(__name__)

BAD_CREDENTIALS = "Wrong email or password."


@dataclass
class Principal:
    """The verified caller of a request."""

    kind: str  # factory_user | platform_root
    id: str
    email: str
    full_name: str
    role: str
    permissions: list[str]
    session_id: str
    factory: schemas.PrincipalFactory | None = None
    must_change_password: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def factory_id(self) -> str | None:
        return self.factory.id if self.factory else None

    @property
    def is_root(self) -> bool:
        return self.kind == "platform_root"

    @property
    def is_super_admin(self) -> bool:
        return self.role == Role.super_admin

    def can(self, permission: str) -> bool:
        return self.is_super_admin or permission in self.permissions

    def out(self) -> schemas.PrincipalOut:
        return schemas.PrincipalOut(
            kind=self.kind,
            user_id=self.id,
            email=self.email,
            full_name=self.full_name,
            role=self.role,
            permissions=self.permissions,
            factory=self.factory,
            must_change_password=self.must_change_password,
        )


def _normalise_email(email: str) -> str:
    return email.strip().lower()


def _user_permissions(user: User) -> list[str]:
    return list(ALL_PERMISSIONS) if user.role == Role.super_admin else sorted(user.permissions or [])


def user_out(user: User) -> schemas.UserOut:
    out = schemas.UserOut.model_validate(user)
    out.permissions = _user_permissions(user)
    out.is_locked = bool(user.locked_until and user.locked_until > utcnow())
    return out


def audit(
    session: Session,
    action: str,
    actor: Principal | None,
    target_type: str = "",
    target_id: str = "",
    ip: str = "",
    factory_id: str | None = None,
    actor_email: str | None = None,
    **details: Any,
) -> None:
    """Record an event in the factory's audit log (the session's factory, or ``factory_id``)."""
    session.add(
        AuditEvent(
            factory_id=factory_id,
            actor_id=actor.id if actor else None,
            actor_email=actor_email if actor_email is not None else (actor.email if actor else ""),
            action=action,
            target_type=target_type,
            target_id=target_id,
            details=details,
            ip=ip,
        )
    )


class TenancyService:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    # ------------------------------------------------------------------ sessions and tokens
    def _open_session(self, kind: str, subject_id: str, factory_id: str | None) -> tuple[str, str]:
        refresh = new_refresh_token()
        with self.db.unscoped_session() as s:
            row = AuthSession(
                subject_kind=kind,
                subject_id=subject_id,
                factory_id=factory_id,
                refresh_hash=token_hash(refresh),
                expires_at=utcnow() + timedelta(hours=self.settings.auth.refresh_token_hours),
            )
            s.add(row)
            s.flush()
            return row.id, refresh

    def _token_pair(self, principal: Principal, refresh: str) -> schemas.TokenPair:
        claims = TokenClaims(
            kind=principal.kind,
            subject_id=principal.id,
            session_id=principal.session_id,
            factory_id=principal.factory_id,
            role=principal.role,
            permissions=principal.permissions,
        )
        return schemas.TokenPair(
            access_token=issue_access_token(self.settings.auth, claims),
            refresh_token=refresh,
            expires_in=self.settings.auth.access_token_minutes * 60,
            principal=principal.out(),
        )

    def _lock_check(self, account: User | PlatformAdmin, now: datetime) -> None:
        if account.locked_until and account.locked_until > now:
            minutes = max(1, int((account.locked_until - now).total_seconds() // 60) + 1)
            LOGIN_FAILURES.labels("locked").inc()
            raise ApiError(
                423,
                "account_locked",
                f"This account is locked after too many failed sign-ins; try again in {minutes} minute(s) "
                "or ask a super admin to reset the password.",
            )

    def _register_failure(self, account: User | PlatformAdmin, now: datetime) -> bool:
        account.failed_logins = (account.failed_logins or 0) + 1
        if account.failed_logins >= self.settings.auth.lockout_threshold:
            account.locked_until = now + timedelta(minutes=self.settings.auth.lockout_minutes)
            account.failed_logins = 0
            return True
        return False

    def login(self, slug: str, email: str, password: str, ip: str) -> schemas.TokenPair:
        email = _normalise_email(email)
        now = utcnow()
        with self.db.unscoped_session() as s:  # sign-in must find the factory before it has a context
            factory = s.execute(select(Factory).where(Factory.slug == slug, Factory.is_active)).scalar_one_or_none()
            factory_ctx = (
                schemas.PrincipalFactory(id=factory.id, slug=factory.slug, name=factory.name, timezone=factory.timezone)
                if factory
                else None
            )
        if factory_ctx is None:
            verify_password(password, None)
            LOGIN_FAILURES.labels("unknown_factory").inc()
            raise ApiError(401, "invalid_credentials", BAD_CREDENTIALS)
        failure: ApiError | None = None
        with self.db.factory_session(factory_ctx.id) as s:
            user = s.execute(select(User).where(User.email == email)).scalar_one_or_none()
            if user is None:
                verify_password(password, None)
                LOGIN_FAILURES.labels("unknown_user").inc()
                audit(s, "login_failed", None, "user", "", ip, actor_email=email, reason="unknown email")
                failure = ApiError(401, "invalid_credentials", BAD_CREDENTIALS)
            else:
                try:
                    self._lock_check(user, now)
                except ApiError as exc:
                    audit(s, "login_refused_locked", None, "user", user.id, ip, actor_email=email)
                    failure = exc
                if failure is None and not verify_password(password, user.password_hash):
                    LOGIN_FAILURES.labels("bad_password").inc()
                    locked = self._register_failure(user, now)
                    audit(s, "login_failed", None, "user", user.id, ip, actor_email=email, reason="wrong password")
                    if locked:
                        audit(
                            s,
                            "account_locked",
                            None,
                            "user",
                            user.id,
                            ip,
                            actor_email=email,
                            minutes=self.settings.auth.lockout_minutes,
                        )
                    failure = ApiError(401, "invalid_credentials", BAD_CREDENTIALS)
                if failure is None and not user.is_active:
                    LOGIN_FAILURES.labels("disabled").inc()
                    audit(s, "login_refused_disabled", None, "user", user.id, ip, actor_email=email)
                    failure = ApiError(
                        403, "account_disabled", "This account is disabled; ask your factory's super admin."
                    )
            if failure is None and user is not None:
                user.failed_logins = 0
                user.locked_until = None
                user.last_login_at = now
                audit(s, "login_succeeded", None, "user", user.id, ip, actor_email=email)
                user_id, role, perms = user.id, user.role, _user_permissions(user)
                full_name, must_change = user.full_name, user.must_change_password
        if failure is not None:
            raise failure
        session_id, refresh = self._open_session("factory_user", user_id, factory_ctx.id)
        principal = Principal(
            kind="factory_user",
            id=user_id,
            email=email,
            full_name=full_name,
            role=role,
            permissions=perms,
            session_id=session_id,
            factory=factory_ctx,
            must_change_password=must_change,
        )
        return self._token_pair(principal, refresh)

    def root_login(self, email: str, password: str, ip: str) -> schemas.TokenPair:
        email = _normalise_email(email)
        now = utcnow()
        failure: ApiError | None = None
        with self.db.unscoped_session() as s:
            admin = s.execute(select(PlatformAdmin).where(PlatformAdmin.email == email)).scalar_one_or_none()
            if admin is None:
                verify_password(password, None)
                failure = ApiError(401, "invalid_credentials", BAD_CREDENTIALS)
            else:
                try:
                    self._lock_check(admin, now)
                except ApiError as exc:
                    failure = exc
                if failure is None and not verify_password(password, admin.password_hash):
                    self._register_failure(admin, now)
                    failure = ApiError(401, "invalid_credentials", BAD_CREDENTIALS)
            if failure is not None:
                LOGIN_FAILURES.labels("root").inc()
                s.add(PlatformAuditEvent(actor_email=email, action="root_login_failed", ip=ip))
            else:
                assert admin is not None
                admin.failed_logins = 0
                admin.locked_until = None
                admin.last_login_at = now
                s.add(PlatformAuditEvent(actor_email=email, action="root_login_succeeded", ip=ip))
                admin_id = admin.id
        if failure is not None:
            raise failure
        session_id, refresh = self._open_session("platform_root", admin_id, None)
        principal = Principal(
            kind="platform_root",
            id=admin_id,
            email=email,
            full_name="Platform root",
            role="platform_root",
            permissions=[],
            session_id=session_id,
        )
        return self._token_pair(principal, refresh)

    def refresh(self, refresh_token: str) -> schemas.TokenPair:
        digest = token_hash(refresh_token)
        now = utcnow()
        expired = ApiError(401, "session_expired", "Your session has ended; sign in again.")
        valid = False
        with self.db.unscoped_session() as s:
            row = s.execute(select(AuthSession).where(AuthSession.refresh_hash == digest)).scalar_one_or_none()
            if row is None:
                reused = s.execute(select(AuthSession).where(AuthSession.previous_hash == digest)).scalar_one_or_none()
                if reused is not None and reused.revoked_at is None:
                    # A rotated token came back: someone else holds a copy. End the whole session
                    # (committed when this block ends, before the error is raised).
                    reused.revoked_at = now
                    log.warning("refresh token reuse detected; session %s revoked", reused.id)
            elif row.revoked_at is None and row.expires_at > now:
                new_refresh = new_refresh_token()
                row.previous_hash = row.refresh_hash
                row.refresh_hash = token_hash(new_refresh)
                row.last_used_at = now
                kind, subject_id, factory_id, session_id = row.subject_kind, row.subject_id, row.factory_id, row.id
                valid = True
        if not valid:
            raise expired
        principal = self.load_principal(kind, subject_id, factory_id, session_id)
        return self._token_pair(principal, new_refresh)

    def logout(self, refresh_token: str) -> None:
        with self.db.unscoped_session() as s:
            row = s.execute(
                select(AuthSession).where(AuthSession.refresh_hash == token_hash(refresh_token))
            ).scalar_one_or_none()
            if row is not None and row.revoked_at is None:
                row.revoked_at = utcnow()

    def revoke_sessions_of(self, subject_id: str) -> None:
        with self.db.unscoped_session() as s:
            for row in s.execute(
                select(AuthSession).where(AuthSession.subject_id == subject_id, AuthSession.revoked_at.is_(None))
            ).scalars():
                row.revoked_at = utcnow()

    def _revoke_after_commit(self, s: Session, subject_id: str) -> None:
        # The session table is a platform table; end the sessions once the change is committed.
        event.listen(s, "after_commit", lambda _s: self.revoke_sessions_of(subject_id), once=True)

    def load_principal(self, kind: str, subject_id: str, factory_id: str | None, session_id: str) -> Principal:
        """The caller behind a verified token, as the database says now (role changes apply at once)."""
        gone = ApiError(401, "session_expired", "Your session has ended; sign in again.")
        s = self.db.plain_session()
        try:
            row = s.get(AuthSession, session_id)
            if row is None or row.revoked_at is not None or row.subject_id != subject_id:
                raise gone
        finally:
            s.close()
        if kind == "platform_root":
            with self.db.unscoped_session() as s:
                admin = s.get(PlatformAdmin, subject_id)
                if admin is None:
                    raise gone
                return Principal(
                    kind=kind,
                    id=admin.id,
                    email=admin.email,
                    full_name="Platform root",
                    role="platform_root",
                    permissions=[],
                    session_id=session_id,
                )
        if not factory_id:
            raise gone
        with self.db.factory_session(factory_id) as s:
            factory = s.get(Factory, factory_id)
            user = s.get(User, subject_id)
            if factory is None or user is None or not user.is_active or not factory.is_active:
                raise gone
            return Principal(
                kind="factory_user",
                id=user.id,
                email=user.email,
                full_name=user.full_name,
                role=user.role,
                permissions=_user_permissions(user),
                session_id=session_id,
                factory=schemas.PrincipalFactory(
                    id=factory.id, slug=factory.slug, name=factory.name, timezone=factory.timezone
                ),
                must_change_password=user.must_change_password,
            )

    def change_password(self, principal: Principal, current: str, new: str, ip: str) -> None:
        if principal.is_root:
            with self.db.unscoped_session() as s:
                admin = s.get(PlatformAdmin, principal.id)
                if admin is None or not verify_password(current, admin.password_hash):
                    raise ApiError(
                        422,
                        "wrong_password",
                        "The current password is wrong.",
                        details=[{"field": "body.current_password", "message": "wrong password"}],
                    )
                check_password_policy(new, admin.email, self.settings.auth.password_min_length, "body.new_password")
                admin.password_hash = hash_password(new, self.settings.auth.bcrypt_rounds)
                s.add(PlatformAuditEvent(actor_email=admin.email, action="root_password_changed", ip=ip))
            return
        assert principal.factory_id
        with self.db.factory_session(principal.factory_id) as s:
            user = s.get(User, principal.id)
            if user is None or not verify_password(current, user.password_hash):
                raise ApiError(
                    422,
                    "wrong_password",
                    "The current password is wrong.",
                    details=[{"field": "body.current_password", "message": "wrong password"}],
                )
            if verify_password(new, user.password_hash):
                raise ApiError(
                    422,
                    "password_unchanged",
                    "The new password must differ from the current one.",
                    details=[{"field": "body.new_password", "message": "same as the current password"}],
                )
            check_password_policy(new, user.email, self.settings.auth.password_min_length, "body.new_password")
            user.password_hash = hash_password(new, self.settings.auth.bcrypt_rounds)
            user.must_change_password = False
            audit(s, "password_changed", principal, "user", user.id, ip)

    # ------------------------------------------------------------------ platform root
    def ensure_root(self) -> str | None:
        """Create the platform root on first start; return a generated password to print once."""
        with self.db.unscoped_session() as s:
            if s.execute(select(PlatformAdmin.id).limit(1)).first() is not None:
                return None
            configured = self.settings.root_password.get_secret_value() if self.settings.root_password else ""
            password = configured or generate_password()
            email = _normalise_email(self.settings.root_email)
            if configured:
                check_password_policy(
                    password, email, self.settings.auth.password_min_length, "FACTORYOPS_ROOT_PASSWORD"
                )
            s.add(PlatformAdmin(email=email, password_hash=hash_password(password, self.settings.auth.bcrypt_rounds)))
            s.add(PlatformAuditEvent(actor_email="system", action="root_created", target_id=email))
            return None if configured else password

    def list_factories_public(self, params: PageParams) -> tuple[list[schemas.FactoryBrief], int]:
        with self.db.unscoped_session() as s:  # the sign-in dropdown: names and slugs only
            rows, total = paginate(s, select(Factory).where(Factory.is_active).order_by(Factory.name), params)
            return [schemas.FactoryBrief.model_validate(f) for f in rows], total

    def _user_counts(self, s: Session, factory_ids: list[str]) -> dict[str, int]:
        if not factory_ids:
            return {}
        rows = s.execute(
            select(User.factory_id, func.count(User.id))
            .where(User.factory_id.in_(factory_ids))
            .group_by(User.factory_id)
        ).all()
        return {fid: int(n) for fid, n in rows}

    def platform_list_factories(self, params: PageParams) -> tuple[list[schemas.PlatformFactoryOut], int]:
        with self.db.unscoped_session() as s:  # platform root console
            rows, total = paginate(s, select(Factory).order_by(Factory.name), params)
            counts = self._user_counts(s, [f.id for f in rows])
            return [
                schemas.PlatformFactoryOut.model_validate(f).model_copy(update={"user_count": counts.get(f.id, 0)})
                for f in rows
            ], total

    def platform_get_factory(self, factory_id: str) -> schemas.PlatformFactoryOut:
        with self.db.unscoped_session() as s:  # platform root console
            factory = s.get(Factory, factory_id)
            if factory is None:
                raise not_found("factory")
            out = schemas.PlatformFactoryOut.model_validate(factory)
            out.user_count = self._user_counts(s, [factory.id]).get(factory.id, 0)
            return out

    def _new_user(
        self,
        email: str,
        full_name: str,
        role: Role,
        permissions: list[str],
        password: str,
        field: str = "body.password",
    ) -> User:
        email = _normalise_email(email)
        check_password_policy(password, email, self.settings.auth.password_min_length, field)
        return User(
            email=email,
            full_name=full_name.strip(),
            role=role.value,
            permissions=[] if role == Role.super_admin else permissions,
            password_hash=hash_password(password, self.settings.auth.bcrypt_rounds),
        )

    def create_factory(self, root: Principal, data: schemas.FactoryCreate, ip: str) -> schemas.PlatformFactoryOut:
        admin = data.super_admin
        user = self._new_user(
            admin.email, admin.full_name, Role.super_admin, [], admin.password, "body.super_admin.password"
        )
        with self.db.unscoped_session() as s:  # platform root creates a factory: no context yet
            if s.execute(select(Factory.id).where(Factory.slug == data.slug)).first() is not None:
                raise ApiError(
                    409,
                    "slug_taken",
                    f"A factory with the slug {data.slug!r} already exists.",
                    details=[{"field": "body.slug", "message": "already taken"}],
                )
            factory = Factory(
                slug=data.slug, name=data.name.strip(), timezone=data.timezone, description=data.description
            )
            s.add(factory)
            s.flush()
            user.factory_id = factory.id
            s.add(user)
            s.flush()
            audit(s, "factory_created", root, "factory", factory.id, ip, factory_id=factory.id, name=factory.name)
            audit(s, "user_created", root, "user", user.id, ip, factory_id=factory.id, email=user.email, role=user.role)
            s.add(
                PlatformAuditEvent(
                    actor_email=root.email,
                    action="factory_created",
                    target_id=factory.id,
                    details={"slug": factory.slug},
                    ip=ip,
                )
            )
            out = schemas.PlatformFactoryOut.model_validate(factory)
            out.user_count = 1
            return out

    def add_super_admin(
        self, root: Principal, factory_id: str, data: schemas.NewSuperAdmin, ip: str
    ) -> schemas.UserOut:
        user = self._new_user(data.email, data.full_name, Role.super_admin, [], data.password)
        with self.db.unscoped_session() as s:  # platform root assigns a super admin
            if s.get(Factory, factory_id) is None:
                raise not_found("factory")
        with self.db.factory_session(factory_id) as s:
            self._ensure_email_free(s, user.email)
            s.add(user)
            s.flush()
            audit(s, "user_created", root, "user", user.id, ip, email=user.email, role=user.role)
            return user_out(user)

    # ------------------------------------------------------------------ factory users
    def _ensure_email_free(self, s: Session, email: str) -> None:
        if s.execute(select(User.id).where(User.email == email)).first() is not None:
            raise ApiError(
                409,
                "email_taken",
                f"A user with the email {email} already exists in this factory.",
                details=[{"field": "body.email", "message": "already taken"}],
            )

    def list_users(self, s: Session, params: PageParams, q: str | None) -> tuple[list[schemas.UserOut], int]:
        stmt = select(User).order_by(User.email)
        if q:
            like = f"%{q.strip().lower()}%"
            stmt = stmt.where(or_(func.lower(User.email).like(like), func.lower(User.full_name).like(like)))
        rows, total = paginate(s, stmt, params)
        return [user_out(u) for u in rows], total

    def get_user(self, s: Session, user_id: str) -> User:
        user = s.get(User, user_id)
        if user is None:
            raise not_found("user")
        return user

    def create_user(self, s: Session, actor: Principal, data: schemas.UserCreate, ip: str) -> schemas.UserOut:
        user = self._new_user(data.email, data.full_name, data.role, data.permissions, data.password)
        self._ensure_email_free(s, user.email)
        s.add(user)
        s.flush()
        audit(
            s,
            "user_created",
            actor,
            "user",
            user.id,
            ip,
            email=user.email,
            role=user.role,
            permissions=user.permissions,
        )
        return user_out(user)

    def _other_active_super_admins(self, s: Session, user_id: str) -> int:
        return int(
            s.execute(
                select(func.count(User.id)).where(User.role == Role.super_admin, User.is_active, User.id != user_id)
            ).scalar_one()
        )

    def update_user(
        self, s: Session, actor: Principal, user_id: str, data: schemas.UserUpdate, ip: str
    ) -> schemas.UserOut:
        user = self.get_user(s, user_id)
        changes: dict[str, Any] = {}
        demoting = data.role is not None and data.role != Role.super_admin and user.role == Role.super_admin
        disabling = data.is_active is False and user.is_active
        if (
            (demoting or disabling)
            and user.role == Role.super_admin
            and self._other_active_super_admins(s, user.id) == 0
        ):
            raise ApiError(
                409, "last_super_admin", "A factory needs at least one active super admin; promote another user first."
            )
        if data.full_name is not None and data.full_name != user.full_name:
            changes["full_name"] = [user.full_name, data.full_name]
            user.full_name = data.full_name.strip()
        if data.role is not None and data.role != user.role:
            changes["role"] = [user.role, data.role.value]
            user.role = data.role.value
        if data.permissions is not None and sorted(data.permissions) != sorted(user.permissions or []):
            changes["permissions"] = [sorted(user.permissions or []), sorted(data.permissions)]
            user.permissions = sorted(data.permissions)
        if user.role == Role.super_admin:
            user.permissions = []
        if data.is_active is not None and data.is_active != user.is_active:
            changes["is_active"] = [user.is_active, data.is_active]
            user.is_active = data.is_active
        if changes:
            action = "role_changed" if ("role" in changes or "permissions" in changes) else "user_updated"
            if "is_active" in changes:
                action = "user_enabled" if user.is_active else "user_disabled"
            audit(s, action, actor, "user", user.id, ip, email=user.email, changes=changes)
        if disabling:
            self._revoke_after_commit(s, user.id)
        return user_out(user)

    def reset_password(self, s: Session, actor: Principal, user_id: str, new_password: str, ip: str) -> schemas.UserOut:
        user = self.get_user(s, user_id)
        check_password_policy(new_password, user.email, self.settings.auth.password_min_length, "body.new_password")
        user.password_hash = hash_password(new_password, self.settings.auth.bcrypt_rounds)
        user.must_change_password = user.id != actor.id
        user.failed_logins = 0
        user.locked_until = None
        audit(s, "password_reset", actor, "user", user.id, ip, email=user.email)
        self._revoke_after_commit(s, user.id)
        return user_out(user)

    def list_audit(self, s: Session, params: PageParams, action: str | None) -> tuple[list[AuditEvent], int]:
        stmt = select(AuditEvent).order_by(AuditEvent.created_at.desc(), AuditEvent.id)
        if action:
            stmt = stmt.where(AuditEvent.action == action)
        return paginate(s, stmt, params)
