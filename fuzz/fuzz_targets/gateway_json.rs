//! The gateway's JSON decoder (Go's JSON syntax and types, then golang/protobuf's jsonpb,
//! as etcd's gateway reads a body): arbitrary bytes as each request type the gateway
//! reads. A body it accepts gives a request that, written back as proto3 JSON (the
//! generated serde impls) and read again, is the same request; a body it refuses gives an
//! error message; never a panic.
#![no_main]

use std::fmt::Debug;

use etcdlite_server::gateway::decode_request;
use etcdlite_server::pb::{etcdserverpb, v3electionpb, v3lockpb};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use serde::Serialize;

/// The gRPC limit a body is decoded under.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

fn roundtrip<T: Message + Default + Serialize + PartialEq + Debug>(name: &str, body: &[u8]) {
    let request = match decode_request::<T>(name, body, MAX_MESSAGE_BYTES) {
        Ok(request) => request,
        Err(message) => {
            assert!(!message.is_empty(), "an empty error message for {name}");
            return;
        }
    };
    // An enum given by a number it has no name for is read (as etcd reads it), but the
    // proto3 JSON writer refuses it: such a request cannot be written back.
    let Ok(json) = serde_json::to_vec(&request) else {
        return;
    };
    let again = decode_request::<T>(name, &json, MAX_MESSAGE_BYTES)
        .unwrap_or_else(|e| panic!("{name} written as {} is refused: {e}", String::from_utf8_lossy(&json)));
    assert_eq!(again, request, "{name} changed through {}", String::from_utf8_lossy(&json));
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 47 {
        0 => roundtrip::<etcdserverpb::RangeRequest>("etcdserverpb.RangeRequest", body),
        1 => roundtrip::<etcdserverpb::PutRequest>("etcdserverpb.PutRequest", body),
        2 => roundtrip::<etcdserverpb::DeleteRangeRequest>("etcdserverpb.DeleteRangeRequest", body),
        3 => roundtrip::<etcdserverpb::TxnRequest>("etcdserverpb.TxnRequest", body),
        4 => roundtrip::<etcdserverpb::CompactionRequest>("etcdserverpb.CompactionRequest", body),
        5 => roundtrip::<etcdserverpb::LeaseGrantRequest>("etcdserverpb.LeaseGrantRequest", body),
        6 => roundtrip::<etcdserverpb::LeaseRevokeRequest>("etcdserverpb.LeaseRevokeRequest", body),
        7 => roundtrip::<etcdserverpb::LeaseTimeToLiveRequest>("etcdserverpb.LeaseTimeToLiveRequest", body),
        8 => roundtrip::<etcdserverpb::LeaseLeasesRequest>("etcdserverpb.LeaseLeasesRequest", body),
        9 => roundtrip::<etcdserverpb::AlarmRequest>("etcdserverpb.AlarmRequest", body),
        10 => roundtrip::<etcdserverpb::StatusRequest>("etcdserverpb.StatusRequest", body),
        11 => roundtrip::<etcdserverpb::DefragmentRequest>("etcdserverpb.DefragmentRequest", body),
        12 => roundtrip::<etcdserverpb::HashRequest>("etcdserverpb.HashRequest", body),
        13 => roundtrip::<etcdserverpb::HashKvRequest>("etcdserverpb.HashKVRequest", body),
        14 => roundtrip::<etcdserverpb::MoveLeaderRequest>("etcdserverpb.MoveLeaderRequest", body),
        15 => roundtrip::<etcdserverpb::DowngradeRequest>("etcdserverpb.DowngradeRequest", body),
        16 => roundtrip::<etcdserverpb::MemberAddRequest>("etcdserverpb.MemberAddRequest", body),
        17 => roundtrip::<etcdserverpb::MemberRemoveRequest>("etcdserverpb.MemberRemoveRequest", body),
        18 => roundtrip::<etcdserverpb::MemberUpdateRequest>("etcdserverpb.MemberUpdateRequest", body),
        19 => roundtrip::<etcdserverpb::MemberListRequest>("etcdserverpb.MemberListRequest", body),
        20 => roundtrip::<v3lockpb::LockRequest>("v3lockpb.LockRequest", body),
        21 => roundtrip::<v3lockpb::UnlockRequest>("v3lockpb.UnlockRequest", body),
        22 => roundtrip::<v3electionpb::CampaignRequest>("v3electionpb.CampaignRequest", body),
        23 => roundtrip::<v3electionpb::ProclaimRequest>("v3electionpb.ProclaimRequest", body),
        24 => roundtrip::<v3electionpb::LeaderRequest>("v3electionpb.LeaderRequest", body),
        25 => roundtrip::<v3electionpb::ResignRequest>("v3electionpb.ResignRequest", body),
        26 => roundtrip::<etcdserverpb::MemberPromoteRequest>("etcdserverpb.MemberPromoteRequest", body),
        27 => roundtrip::<etcdserverpb::AuthEnableRequest>("etcdserverpb.AuthEnableRequest", body),
        28 => roundtrip::<etcdserverpb::AuthDisableRequest>("etcdserverpb.AuthDisableRequest", body),
        29 => roundtrip::<etcdserverpb::AuthStatusRequest>("etcdserverpb.AuthStatusRequest", body),
        30 => roundtrip::<etcdserverpb::AuthenticateRequest>("etcdserverpb.AuthenticateRequest", body),
        31 => roundtrip::<etcdserverpb::AuthUserAddRequest>("etcdserverpb.AuthUserAddRequest", body),
        32 => roundtrip::<etcdserverpb::AuthUserGetRequest>("etcdserverpb.AuthUserGetRequest", body),
        33 => roundtrip::<etcdserverpb::AuthUserListRequest>("etcdserverpb.AuthUserListRequest", body),
        34 => roundtrip::<etcdserverpb::AuthUserDeleteRequest>("etcdserverpb.AuthUserDeleteRequest", body),
        35 => roundtrip::<etcdserverpb::AuthUserChangePasswordRequest>(
            "etcdserverpb.AuthUserChangePasswordRequest",
            body,
        ),
        36 => {
            roundtrip::<etcdserverpb::AuthUserGrantRoleRequest>("etcdserverpb.AuthUserGrantRoleRequest", body)
        }
        37 => roundtrip::<etcdserverpb::AuthUserRevokeRoleRequest>(
            "etcdserverpb.AuthUserRevokeRoleRequest",
            body,
        ),
        38 => roundtrip::<etcdserverpb::AuthRoleAddRequest>("etcdserverpb.AuthRoleAddRequest", body),
        39 => roundtrip::<etcdserverpb::AuthRoleGetRequest>("etcdserverpb.AuthRoleGetRequest", body),
        40 => roundtrip::<etcdserverpb::AuthRoleListRequest>("etcdserverpb.AuthRoleListRequest", body),
        41 => roundtrip::<etcdserverpb::AuthRoleDeleteRequest>("etcdserverpb.AuthRoleDeleteRequest", body),
        42 => roundtrip::<etcdserverpb::AuthRoleGrantPermissionRequest>(
            "etcdserverpb.AuthRoleGrantPermissionRequest",
            body,
        ),
        43 => roundtrip::<etcdserverpb::AuthRoleRevokePermissionRequest>(
            "etcdserverpb.AuthRoleRevokePermissionRequest",
            body,
        ),
        44 => roundtrip::<etcdserverpb::WatchRequest>("etcdserverpb.WatchRequest", body),
        45 => roundtrip::<etcdserverpb::LeaseKeepAliveRequest>("etcdserverpb.LeaseKeepAliveRequest", body),
        46 => roundtrip::<etcdserverpb::SnapshotRequest>("etcdserverpb.SnapshotRequest", body),
        _ => unreachable!("47 request types"),
    }
});
