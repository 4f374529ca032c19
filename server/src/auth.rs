//! The Auth service: users, roles, permissions, tokens. Each call runs on a blocking
//! thread: password hashing is slow by design, and changes write to the engine.

use std::sync::Arc;

use etcdlite::auth::{AuthStore, Caller, KeyPermission, PermissionType};
use etcdlite::Error;
use tonic::{Request, Response, Status};

use crate::node::Node;
use crate::pb::authpb;
use crate::pb::etcdserverpb as pb;
use crate::pb::etcdserverpb::auth_server::Auth;
use crate::status::to_status;

/// etcd's `Auth` service over the node's store.
#[derive(Clone)]
pub struct AuthService {
    node: Arc<Node>,
}

impl AuthService {
    /// The service of `node`.
    pub fn new(node: Arc<Node>) -> Self {
        AuthService { node }
    }

    /// Runs `call` on the store's auth as the request's caller, on a blocking thread.
    async fn run<Req, T>(
        &self,
        request: Request<Req>,
        call: impl FnOnce(&AuthStore, &Caller, Req) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Status>
    where
        Req: prost::Message + Send + 'static,
        T: Send + 'static,
    {
        // etcd refuses a request larger than --max-request-bytes before applying it.
        if request.get_ref().encoded_len() > self.node.store.limits().max_request_bytes {
            return Err(to_status(Error::RequestTooLarge));
        }
        let caller = self.node.caller(&request);
        let request = request.into_inner();
        let store = self.node.store.clone();
        tokio::task::spawn_blocking(move || call(store.auth(), &caller, request))
            .await
            .map_err(|e| Status::internal(format!("auth call failed: {e}")))?
            .map_err(to_status)
    }

    fn header(&self) -> Option<pb::ResponseHeader> {
        self.node.header(None)
    }
}

/// A library permission as etcd's `authpb.Permission`.
pub(crate) fn permission_to_pb(perm: KeyPermission) -> authpb::Permission {
    authpb::Permission { perm_type: perm.perm_type as i32, key: perm.key, range_end: perm.range_end }
}

#[tonic::async_trait]
impl Auth for AuthService {
    async fn auth_enable(
        &self,
        request: Request<pb::AuthEnableRequest>,
    ) -> Result<Response<pb::AuthEnableResponse>, Status> {
        self.run(request, |auth, caller, _| auth.auth_enable(caller)).await?;
        Ok(Response::new(pb::AuthEnableResponse { header: self.header() }))
    }

    async fn auth_disable(
        &self,
        request: Request<pb::AuthDisableRequest>,
    ) -> Result<Response<pb::AuthDisableResponse>, Status> {
        self.run(request, |auth, caller, _| auth.auth_disable(caller)).await?;
        Ok(Response::new(pb::AuthDisableResponse { header: self.header() }))
    }

    async fn auth_status(
        &self,
        request: Request<pb::AuthStatusRequest>,
    ) -> Result<Response<pb::AuthStatusResponse>, Status> {
        let status = self.run(request, |auth, caller, _| auth.auth_status(caller)).await?;
        Ok(Response::new(pb::AuthStatusResponse {
            header: self.header(),
            enabled: status.enabled,
            auth_revision: status.revision,
        }))
    }

    async fn authenticate(
        &self,
        request: Request<pb::AuthenticateRequest>,
    ) -> Result<Response<pb::AuthenticateResponse>, Status> {
        let token = self.run(request, |auth, _, r| auth.authenticate(&r.name, &r.password)).await?;
        Ok(Response::new(pb::AuthenticateResponse { header: self.header(), token }))
    }

    async fn user_add(
        &self,
        request: Request<pb::AuthUserAddRequest>,
    ) -> Result<Response<pb::AuthUserAddResponse>, Status> {
        self.run(request, |auth, caller, r| {
            let no_password = r.options.is_some_and(|o| o.no_password);
            auth.user_add(caller, &r.name, &r.password, no_password)
        })
        .await?;
        Ok(Response::new(pb::AuthUserAddResponse { header: self.header() }))
    }

    async fn user_get(
        &self,
        request: Request<pb::AuthUserGetRequest>,
    ) -> Result<Response<pb::AuthUserGetResponse>, Status> {
        let roles = self.run(request, |auth, caller, r| auth.user_get(caller, &r.name)).await?;
        Ok(Response::new(pb::AuthUserGetResponse { header: self.header(), roles }))
    }

    async fn user_list(
        &self,
        request: Request<pb::AuthUserListRequest>,
    ) -> Result<Response<pb::AuthUserListResponse>, Status> {
        let users = self.run(request, |auth, caller, _| auth.user_list(caller)).await?;
        Ok(Response::new(pb::AuthUserListResponse { header: self.header(), users }))
    }

    async fn user_delete(
        &self,
        request: Request<pb::AuthUserDeleteRequest>,
    ) -> Result<Response<pb::AuthUserDeleteResponse>, Status> {
        self.run(request, |auth, caller, r| auth.user_delete(caller, &r.name)).await?;
        Ok(Response::new(pb::AuthUserDeleteResponse { header: self.header() }))
    }

    async fn user_change_password(
        &self,
        request: Request<pb::AuthUserChangePasswordRequest>,
    ) -> Result<Response<pb::AuthUserChangePasswordResponse>, Status> {
        self.run(request, |auth, caller, r| {
            // A client may send the hash itself (etcd 3.5 stores it as given).
            if r.password.is_empty() && !r.hashed_password.is_empty() {
                auth.user_change_password_hashed(caller, &r.name, &r.hashed_password)
            } else {
                auth.user_change_password(caller, &r.name, &r.password)
            }
        })
        .await?;
        Ok(Response::new(pb::AuthUserChangePasswordResponse { header: self.header() }))
    }

    async fn user_grant_role(
        &self,
        request: Request<pb::AuthUserGrantRoleRequest>,
    ) -> Result<Response<pb::AuthUserGrantRoleResponse>, Status> {
        self.run(request, |auth, caller, r| auth.user_grant_role(caller, &r.user, &r.role)).await?;
        Ok(Response::new(pb::AuthUserGrantRoleResponse { header: self.header() }))
    }

    async fn user_revoke_role(
        &self,
        request: Request<pb::AuthUserRevokeRoleRequest>,
    ) -> Result<Response<pb::AuthUserRevokeRoleResponse>, Status> {
        self.run(request, |auth, caller, r| auth.user_revoke_role(caller, &r.name, &r.role)).await?;
        Ok(Response::new(pb::AuthUserRevokeRoleResponse { header: self.header() }))
    }

    async fn role_add(
        &self,
        request: Request<pb::AuthRoleAddRequest>,
    ) -> Result<Response<pb::AuthRoleAddResponse>, Status> {
        self.run(request, |auth, caller, r| auth.role_add(caller, &r.name)).await?;
        Ok(Response::new(pb::AuthRoleAddResponse { header: self.header() }))
    }

    async fn role_get(
        &self,
        request: Request<pb::AuthRoleGetRequest>,
    ) -> Result<Response<pb::AuthRoleGetResponse>, Status> {
        let perms = self.run(request, |auth, caller, r| auth.role_get(caller, &r.role)).await?;
        let perm = perms.into_iter().map(permission_to_pb).collect();
        Ok(Response::new(pb::AuthRoleGetResponse { header: self.header(), perm }))
    }

    async fn role_list(
        &self,
        request: Request<pb::AuthRoleListRequest>,
    ) -> Result<Response<pb::AuthRoleListResponse>, Status> {
        let roles = self.run(request, |auth, caller, _| auth.role_list(caller)).await?;
        Ok(Response::new(pb::AuthRoleListResponse { header: self.header(), roles }))
    }

    async fn role_delete(
        &self,
        request: Request<pb::AuthRoleDeleteRequest>,
    ) -> Result<Response<pb::AuthRoleDeleteResponse>, Status> {
        self.run(request, |auth, caller, r| auth.role_delete(caller, &r.role)).await?;
        Ok(Response::new(pb::AuthRoleDeleteResponse { header: self.header() }))
    }

    async fn role_grant_permission(
        &self,
        request: Request<pb::AuthRoleGrantPermissionRequest>,
    ) -> Result<Response<pb::AuthRoleGrantPermissionResponse>, Status> {
        self.run(request, |auth, caller, r| {
            let Some(perm) = r.perm else {
                return auth.check_admin(caller).and(Err(Error::PermissionNotGiven));
            };
            // etcd stores a type it does not know (which then allows nothing); etcdlite
            // refuses it (docs/limitations.md).
            let Some(perm_type) = PermissionType::from_i32(perm.perm_type) else {
                return auth.check_admin(caller).and(Err(Error::InvalidAuthMgmt));
            };
            let perm = KeyPermission { perm_type, key: perm.key, range_end: perm.range_end };
            auth.role_grant_permission(caller, &r.name, perm)
        })
        .await?;
        Ok(Response::new(pb::AuthRoleGrantPermissionResponse { header: self.header() }))
    }

    async fn role_revoke_permission(
        &self,
        request: Request<pb::AuthRoleRevokePermissionRequest>,
    ) -> Result<Response<pb::AuthRoleRevokePermissionResponse>, Status> {
        self.run(request, |auth, caller, r| {
            auth.role_revoke_permission(caller, &r.role, &r.key, &r.range_end)
        })
        .await?;
        Ok(Response::new(pb::AuthRoleRevokePermissionResponse { header: self.header() }))
    }
}
