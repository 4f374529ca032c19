//! A minimal HTTP/2 client spoken by hand over loopback, for what no Rust HTTP/2 client
//! sends: an `:authority` that is a URL (as etcdctl 3.4 sends it), or a control character.
//! One unary gRPC call at a time. Used by `tests/authority.rs` and `benches/authority.rs`;
//! included with `#[path]`, beside `raw_h2.rs`, whose frame builders it uses.

use loona_hpack::{Decoder, Encoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::raw_h2::{
    frame, CONTINUATION, DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS, PREFACE, RST_STREAM, SETTINGS,
    WINDOW_UPDATE,
};

/// How one call ended.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// The call's trailers came with this grpc-status, after this response message (empty
    /// when there was none), without its 5-byte gRPC prefix.
    Status(String, Vec<u8>),
    /// The server reset the stream with this error code.
    Reset(u32),
}

/// One HTTP/2 connection.
pub struct RawH2 {
    stream: TcpStream,
    /// The client's HPACK encoder: it indexes fields whose names are in no table, so later
    /// requests refer to its dynamic table.
    encoder: Encoder<'static>,
    /// For the server's header blocks.
    decoder: Decoder<'static>,
    next_stream: u32,
}

impl RawH2 {
    /// Connects to `addr` and sends the preface and empty SETTINGS.
    pub async fn connect(addr: std::net::SocketAddr) -> RawH2 {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(SETTINGS, 0, 0, &[]));
        stream.write_all(&hello).await.expect("send the preface");
        RawH2 { stream, encoder: Encoder::new(), decoder: Decoder::new(), next_stream: 1 }
    }

    /// A unary call of `path` with `message` (protobuf bytes), `authority` and `extra`
    /// fields, sent as one HEADERS frame and one DATA frame; reads until it ends.
    pub async fn unary(
        &mut self,
        path: &str,
        authority: &[u8],
        message: &[u8],
        extra: &[(&[u8], &[u8])],
    ) -> Answer {
        let stream = self.next_stream;
        self.next_stream += 2;
        let mut fields: Vec<(&[u8], &[u8])> = vec![
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":path", path.as_bytes()),
            (b":authority", authority),
            (b"content-type", b"application/grpc"),
            (b"te", b"trailers"),
        ];
        fields.extend_from_slice(extra);
        let block = self.encoder.encode(fields);
        let mut body = vec![0u8];
        body.extend_from_slice(&(message.len() as u32).to_be_bytes());
        body.extend_from_slice(message);
        let mut bytes = frame(HEADERS, END_HEADERS, stream, &block);
        bytes.extend(frame(DATA, END_STREAM, stream, &body));
        self.stream.write_all(&bytes).await.expect("send a call");
        self.answer(stream).await
    }

    /// Reads the server's frames until stream `id` ends.
    async fn answer(&mut self, id: u32) -> Answer {
        let mut block = Vec::new();
        let mut body = Vec::new();
        loop {
            let mut header = [0u8; 9];
            self.stream.read_exact(&mut header).await.expect("the server closed the connection");
            let length = usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
            let (kind, flags) = (header[3], header[4]);
            let stream = u32::from_be_bytes(header[5..9].try_into().expect("four bytes")) & 0x7fff_ffff;
            let mut payload = vec![0u8; length];
            self.stream.read_exact(&mut payload).await.expect("a frame's payload");
            match kind {
                SETTINGS if flags & 0x1 == 0 => {
                    self.stream.write_all(&frame(SETTINGS, 0x1, 0, &[])).await.expect("SETTINGS ACK")
                }
                GOAWAY => panic!("GOAWAY, error code {:?}", &payload[4..8]),
                RST_STREAM if stream == id => {
                    return Answer::Reset(u32::from_be_bytes(payload[..4].try_into().expect("four bytes")))
                }
                DATA => {
                    if length > 0 {
                        // Gives the connection's flow-control window back, so that it never
                        // runs dry however many calls the connection carries.
                        let increment = (length as u32).to_be_bytes();
                        self.stream
                            .write_all(&frame(WINDOW_UPDATE, 0, 0, &increment))
                            .await
                            .expect("WINDOW_UPDATE");
                    }
                    if stream == id {
                        body.extend(payload);
                    }
                }
                HEADERS | CONTINUATION => {
                    // Every block is decoded, whatever its stream, to keep the table.
                    block.extend(payload);
                    if flags & END_HEADERS == 0 {
                        continue;
                    }
                    let fields =
                        self.decoder.decode(&std::mem::take(&mut block)).expect("the server's HPACK");
                    let status = fields.into_iter().find(|(name, _)| name == b"grpc-status");
                    if let (Some((_, status)), true) = (status, stream == id) {
                        let message = body.get(5..).unwrap_or_default().to_vec();
                        return Answer::Status(String::from_utf8(status).expect("a UTF-8 status"), message);
                    }
                }
                _ => {}
            }
        }
    }
}
