//! Request messages read from JSON as etcd 3.5's gateway reads them: grpc-gateway v1 hands
//! a body's value to golang/protobuf 1.5's jsonpb, which takes the fields of the message in
//! their order in the `.proto`, each by its proto name or its JSON name (the JSON name
//! winning when both are there), skips `null` and unknown fields, and decodes each value
//! with Go's `json.Unmarshal` ([`gojson`](super::gojson)):
//!
//! * 64- and 32-bit integers as numbers or as strings holding one (`"5"`, `" 5 "`, even
//!   `"null"`), through Go's parser and its errors;
//! * bytes as standard base64 (padded; `\r` and `\n` skipped) or as an array of numbers;
//! * enums by name (the text between the quotes as it is, escapes unresolved) or number
//!   (any `int32`);
//! * a `null` in a list as the element's zero value.
//!
//! The first field that fails (in `.proto` order, depth first) gives the error, with Go's
//! message. A message is read straight into its protobuf encoding, which prost then
//! decodes into the typed request: nothing of the JSON is kept as a tree.

use std::collections::HashMap;
use std::sync::LazyLock;

use prost::encoding::{encode_key, encode_varint, WireType};
use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};

use super::gojson::{self, Kind};

/// How a field's value is read and written.
#[derive(Clone, Debug, PartialEq)]
enum FieldType {
    /// A scalar of this protobuf type.
    Scalar(Type),
    /// An enum: its full name.
    Enum(String),
    /// A message: its full name.
    Message(String),
    /// A type no etcd request uses (floats, maps, groups): never read.
    Unsupported(&'static str),
}

/// One field of a message.
#[derive(Debug)]
struct Field {
    name: String,
    json_name: String,
    number: u32,
    repeated: bool,
    ty: FieldType,
}

/// The messages and enums of etcd's protocol, by full name (`etcdserverpb.RangeRequest`).
#[derive(Debug, Default)]
pub struct Schema {
    /// Each message's fields, in their `.proto` order.
    messages: HashMap<String, Vec<Field>>,
    /// Each enum's values by name.
    enums: HashMap<String, HashMap<String, i32>>,
}

/// The schema of the protocol the server is built from (the build script's descriptors).
pub static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    let bytes = include_bytes!(concat!(env!("OUT_DIR"), "/etcd_descriptors.bin"));
    Schema::new(&prost_types::FileDescriptorSet::decode(&bytes[..]).expect("the build script's descriptors"))
});

/// protoc's JSON name of a field: underscores dropped, the letter after each capitalized.
fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

impl Schema {
    /// The schema of every message and enum in `set`.
    pub fn new(set: &prost_types::FileDescriptorSet) -> Schema {
        let mut messages = Vec::new();
        let mut schema = Schema::default();
        for file in &set.file {
            schema.add_enums(file.package(), &file.enum_type);
            collect(file.package(), &file.message_type, &mut messages, &mut schema);
        }
        let map_entries: std::collections::HashSet<&str> = messages
            .iter()
            .filter(|(_, m)| m.options.as_ref().is_some_and(|o| o.map_entry()))
            .map(|(name, _)| name.as_str())
            .collect();
        for (name, message) in &messages {
            let fields = message
                .field
                .iter()
                .map(|field| {
                    let type_name = field.type_name().trim_start_matches('.').to_owned();
                    let ty = match field.r#type() {
                        Type::Message if map_entries.contains(type_name.as_str()) => {
                            FieldType::Unsupported("map")
                        }
                        Type::Message => FieldType::Message(type_name),
                        Type::Enum => FieldType::Enum(type_name),
                        Type::Double | Type::Float => FieldType::Unsupported("floating-point"),
                        Type::Group => FieldType::Unsupported("group"),
                        scalar => FieldType::Scalar(scalar),
                    };
                    Field {
                        name: field.name().to_owned(),
                        json_name: field.json_name.clone().unwrap_or_else(|| camel_case(field.name())),
                        number: u32::try_from(field.number()).unwrap_or_default(),
                        repeated: field.label() == Label::Repeated,
                        ty,
                    }
                })
                .collect();
            schema.messages.insert(name.clone(), fields);
        }
        return schema;

        fn collect<'a>(
            scope: &str,
            descriptors: &'a [prost_types::DescriptorProto],
            out: &mut Vec<(String, &'a prost_types::DescriptorProto)>,
            schema: &mut Schema,
        ) {
            for message in descriptors {
                let name = format!("{scope}.{}", message.name());
                schema.add_enums(&name, &message.enum_type);
                collect(&name, &message.nested_type, out, schema);
                out.push((name, message));
            }
        }
    }

    fn add_enums(&mut self, scope: &str, enums: &[prost_types::EnumDescriptorProto]) {
        for descriptor in enums {
            let values = descriptor.value.iter().map(|v| (v.name().to_owned(), v.number())).collect();
            self.enums.insert(format!("{scope}.{}", descriptor.name()), values);
        }
    }

    /// JSON `value` (a whole, checked value, spaces trimmed) as message `name`, in its
    /// protobuf encoding; or the error etcd's gateway gives for it.
    pub fn encode(&self, name: &str, value: &[u8]) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        self.message(name, value, &mut out)?;
        Ok(out)
    }

    fn message(&self, name: &str, value: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        if value == b"null" {
            return Ok(());
        }
        if Kind::of(value) != Kind::Object {
            return Err(gojson::mismatch(value, "map[string]json.RawMessage"));
        }
        // As a Go map: a key given twice keeps its last value.
        let given: HashMap<String, &[u8]> = gojson::members(value).into_iter().collect();
        let Some(fields) = self.messages.get(name) else {
            return Err(format!("no message type {name}"));
        };
        for field in fields {
            let value = given.get(&field.json_name).or_else(|| given.get(&field.name));
            match value {
                Some(&value) if value != b"null" => self.field(field, value, out)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn field(&self, field: &Field, value: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        if !field.repeated {
            return self.singular(field, value, out);
        }
        if Kind::of(value) != Kind::Array {
            return Err(gojson::mismatch(value, "[]json.RawMessage"));
        }
        gojson::elements(value).into_iter().try_for_each(|element| self.singular(field, element, out))
    }

    /// One value of `field`, encoded with its tag (a list's elements each with theirs).
    fn singular(&self, field: &Field, value: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let number = field.number;
        match &field.ty {
            FieldType::Scalar(ty) => scalar(*ty, number, value, out),
            FieldType::Enum(name) => {
                let n = self.enum_number(name, value)?;
                encode_key(number, WireType::Varint, out);
                encode_varint(i64::from(n) as u64, out);
                Ok(())
            }
            FieldType::Message(name) => {
                let mut nested = Vec::new();
                self.message(name, value, &mut nested)?;
                delimited(number, &nested, out);
                Ok(())
            }
            FieldType::Unsupported(what) => {
                Err(format!("the gateway does not read {what} fields ({})", field.name))
            }
        }
    }

    /// An enum's value: a quoted name (as written, escapes and all) or a number.
    fn enum_number(&self, name: &str, value: &[u8]) -> Result<i32, String> {
        let Some(inner) = quoted(value) else {
            let n = gojson::to_int(value, 32, "protoreflect.EnumNumber")?;
            return Ok(n.and_then(|n| i32::try_from(n).ok()).unwrap_or(0));
        };
        let values = self.enums.get(name);
        let found = std::str::from_utf8(inner).ok().and_then(|inner| values?.get(inner));
        found.copied().ok_or_else(|| format!("unknown value {} for enum {name}", gojson::quote(value)))
    }
}

/// The text between the quotes of a string value (jsonpb's `trimQuote`: no unescaping).
fn quoted(value: &[u8]) -> Option<&[u8]> {
    match value {
        [b'"', inner @ .., b'"'] => Some(inner),
        _ => None,
    }
}

/// An integer's value: jsonpb takes the text between the quotes of a string, then has
/// `json.Unmarshal` read it as a whole input.
fn integer_text(value: &[u8]) -> Result<&[u8], String> {
    let text = quoted(value).unwrap_or(value);
    gojson::check_valid(text)?;
    Ok(gojson::trim(text))
}

fn delimited(number: u32, bytes: &[u8], out: &mut Vec<u8>) {
    encode_key(number, WireType::LengthDelimited, out);
    encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// A scalar field's value, read as Go reads its type and encoded as protobuf encodes it.
fn scalar(ty: Type, number: u32, value: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let signed = |bits, go_type| -> Result<i64, String> {
        Ok(gojson::to_int(integer_text(value)?, bits, go_type)?.unwrap_or(0))
    };
    let unsigned = |bits, go_type| -> Result<u64, String> {
        Ok(gojson::to_uint(integer_text(value)?, bits, go_type)?.unwrap_or(0))
    };
    let varint = |n: u64, out: &mut Vec<u8>| {
        encode_key(number, WireType::Varint, out);
        encode_varint(n, out);
    };
    match ty {
        Type::Bool => varint(u64::from(gojson::to_bool(value)?.unwrap_or(false)), out),
        Type::Int32 | Type::Int64 => {
            let n = if ty == Type::Int32 { signed(32, "int32")? } else { signed(64, "int64")? };
            varint(n as u64, out);
        }
        Type::Uint32 => varint(unsigned(32, "uint32")?, out),
        Type::Uint64 => varint(unsigned(64, "uint64")?, out),
        Type::Sint32 | Type::Sint64 => {
            let n = if ty == Type::Sint32 { signed(32, "int32")? } else { signed(64, "int64")? };
            varint(((n << 1) ^ (n >> 63)) as u64, out);
        }
        Type::Fixed32 | Type::Sfixed32 => {
            let n = if ty == Type::Fixed32 { unsigned(32, "uint32")? } else { signed(32, "int32")? as u64 };
            encode_key(number, WireType::ThirtyTwoBit, out);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        Type::Fixed64 | Type::Sfixed64 => {
            let n = if ty == Type::Fixed64 { unsigned(64, "uint64")? } else { signed(64, "int64")? as u64 };
            encode_key(number, WireType::SixtyFourBit, out);
            out.extend_from_slice(&n.to_le_bytes());
        }
        Type::String => delimited(number, gojson::to_string(value)?.unwrap_or_default().as_bytes(), out),
        Type::Bytes => delimited(number, &gojson::to_bytes(value)?.unwrap_or_default(), out),
        Type::Double | Type::Float | Type::Group | Type::Message | Type::Enum => {
            return Err(format!("the gateway does not read {ty:?} fields"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::etcdserverpb as pb;

    fn decode<T: Message + Default>(name: &str, json: &str) -> Result<T, String> {
        let bytes = SCHEMA.encode(name, json.as_bytes())?;
        Ok(T::decode(bytes.as_slice()).expect("an encoding prost reads"))
    }

    fn range(json: &str) -> Result<pb::RangeRequest, String> {
        decode("etcdserverpb.RangeRequest", json)
    }

    #[test]
    fn every_field_etcd_requests_use_is_read() {
        for (name, fields) in &SCHEMA.messages {
            for field in fields {
                assert!(!matches!(field.ty, FieldType::Unsupported(_)), "{name}.{}", field.name);
            }
        }
        let fields = &SCHEMA.messages["etcdserverpb.RangeRequest"];
        assert_eq!((fields[1].name.as_str(), fields[1].json_name.as_str()), ("range_end", "rangeEnd"));
        assert_eq!(camel_case("min_mod_revision"), "minModRevision");
    }

    #[test]
    fn fields_are_read_by_either_name_in_every_form_go_accepts() {
        let request = range(
            r#"{"key":"Zm9v","rangeEnd":"Zm9w","limit":"5","revision":7,"sort_order":"DESCEND",
                "sortTarget":2,"keys_only":true,"min_mod_revision":" 3 ","maxCreateRevision":"null"}"#,
        )
        .unwrap();
        assert_eq!(request.key, b"foo");
        assert_eq!(request.range_end, b"fop");
        assert_eq!((request.limit, request.revision, request.min_mod_revision), (5, 7, 3));
        assert_eq!((request.sort_order, request.sort_target), (2, 2));
        assert!(request.keys_only);
        // The JSON name wins over the proto name; a repeated key keeps its last value;
        // unknown fields and nulls are skipped.
        let request = range(
            r#"{"key":"!!","key":"Zm9v","range_end":"!!","rangeEnd":"AA==","x":{"y":[1]},"limit":null}"#,
        )
        .unwrap();
        assert_eq!((request.key.as_slice(), request.range_end.as_slice()), (&b"foo"[..], &b"\0"[..]));
        assert_eq!(range("null").unwrap(), pb::RangeRequest::default());
        // Any int32 is an enum number.
        assert_eq!(range(r#"{"sort_order":-1}"#).unwrap().sort_order, -1);
    }

    #[test]
    fn the_first_failing_field_in_proto_order_gives_gos_error() {
        for (json, expected) in [
            (r#"{"limit":"abc","key":"!!"}"#, "illegal base64 data at input byte 0"),
            (r#"{"limit":"abc"}"#, "invalid character 'a' looking for beginning of value"),
            (r#"{"limit":""}"#, "unexpected end of JSON input"),
            (r#"{"limit":"1 2"}"#, "invalid character '2' after top-level value"),
            (r#"{"limit":"-"}"#, "invalid character ' ' in numeric literal"),
            (r#"{"limit":1.5}"#, "json: cannot unmarshal number 1.5 into Go value of type int64"),
            (r#"{"limit":"1e3"}"#, "json: cannot unmarshal number 1e3 into Go value of type int64"),
            (r#"{"serializable":"true"}"#, "json: cannot unmarshal string into Go value of type bool"),
            (r#"{"key":5}"#, "json: cannot unmarshal number into Go value of type []uint8"),
            (
                r#"{"sort_order":"NOPE"}"#,
                r#"unknown value "\"NOPE\"" for enum etcdserverpb.RangeRequest.SortOrder"#,
            ),
            (
                r#"{"sort_order":"\u0041SCEND"}"#,
                r#"unknown value "\"\\u0041SCEND\"" for enum etcdserverpb.RangeRequest.SortOrder"#,
            ),
            (
                r#"{"sort_order":1.5}"#,
                "json: cannot unmarshal number 1.5 into Go value of type protoreflect.EnumNumber",
            ),
            (
                r#"{"sort_order":[]}"#,
                "json: cannot unmarshal array into Go value of type protoreflect.EnumNumber",
            ),
            ("[1]", "json: cannot unmarshal array into Go value of type map[string]json.RawMessage"),
            (r#""x""#, "json: cannot unmarshal string into Go value of type map[string]json.RawMessage"),
        ] {
            assert_eq!(range(json).unwrap_err(), expected, "{json}");
        }
    }

    #[test]
    fn nested_messages_lists_and_oneofs_are_read_as_jsonpb_reads_them() {
        let txn = |json: &str| decode::<pb::TxnRequest>("etcdserverpb.TxnRequest", json);
        let request = txn(
            r#"{"compare":[{"key":"YQ==","target":"VERSION","result":"GREATER","version":"0"},null],
                "success":[{"request_range":{"key":"YQ=="},"request_put":{"key":"Yg=="}},{"request_delete_range":{}}]}"#,
        )
        .unwrap();
        // A null element is an empty message; the oneof member last in .proto order wins.
        assert_eq!(request.compare.len(), 2);
        assert_eq!(request.compare[0].target_union, Some(pb::compare::TargetUnion::Version(0)));
        assert_eq!(request.compare[1], pb::Compare::default());
        assert!(matches!(request.success[0].request, Some(pb::request_op::Request::RequestPut(_))));
        assert!(matches!(request.success[1].request, Some(pb::request_op::Request::RequestDeleteRange(_))));
        assert_eq!(
            txn(r#"{"compare":"x"}"#).unwrap_err(),
            "json: cannot unmarshal string into Go value of type []json.RawMessage"
        );
        assert_eq!(
            txn(r#"{"compare":[5]}"#).unwrap_err(),
            "json: cannot unmarshal number into Go value of type map[string]json.RawMessage"
        );
        assert_eq!(
            txn(r#"{"failure":[{"request_put":{"key":"!!"}}],"compare":[{"target":"NOPE"}]}"#).unwrap_err(),
            r#"unknown value "\"NOPE\"" for enum etcdserverpb.Compare.CompareTarget"#
        );
        let member =
            decode::<pb::MemberAddRequest>("etcdserverpb.MemberAddRequest", r#"{"peerURLs":["a",null]}"#);
        assert_eq!(member.unwrap().peer_ur_ls, ["a", ""]);
        let remove = decode::<pb::MemberRemoveRequest>("etcdserverpb.MemberRemoveRequest", r#"{"ID":"-1"}"#);
        assert_eq!(remove.unwrap_err(), "json: cannot unmarshal number -1 into Go value of type uint64");
        let watch = decode::<pb::WatchRequest>(
            "etcdserverpb.WatchRequest",
            r#"{"create_request":{"key":"YQ==","filters":["NODELETE",0,null]}}"#,
        );
        let Some(pb::watch_request::RequestUnion::CreateRequest(create)) = watch.unwrap().request_union
        else {
            panic!("a create request");
        };
        assert_eq!(create.filters, [1, 0, 0]);
    }
}
