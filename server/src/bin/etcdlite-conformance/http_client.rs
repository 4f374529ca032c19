//! A small HTTP/1.1 client for the runner's gateway steps. It sends exactly the request a
//! step describes (adding only `Host`, `Content-Length` and `Connection: close`, so a
//! missing or odd `Content-Type` reaches the server as written) and reads the answer as it
//! comes: whole, or line by line for a stream that stays open (a watch).

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

/// What a step sends.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// How the body of an answer is delimited.
#[derive(Debug)]
enum Framing {
    /// `Content-Length`: this many bytes still to come.
    Length(usize),
    /// `Transfer-Encoding: chunked`, at this point of a chunk.
    Chunked(Chunk),
    /// Until the server closes the connection.
    Close,
    /// Nothing more.
    Done,
}

#[derive(Debug)]
enum Chunk {
    /// Expecting a chunk's size line.
    Size,
    /// In a chunk's data, this many bytes left.
    Data(usize),
    /// Expecting the line break after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines up to an empty one.
    Trailers,
}

/// One line of a streamed answer.
#[derive(Debug, PartialEq)]
pub enum Line {
    Text(Vec<u8>),
    /// The answer ended.
    Ended,
    /// Nothing came in time.
    Timeout,
}

/// An answer: its status and headers at once, its body as it arrives.
pub struct Response {
    pub status: u16,
    /// Header names lowercased, in the order received.
    pub headers: Vec<(String, String)>,
    /// The trailers of a chunked body, names lowercased, once it has ended.
    pub trailers: Vec<(String, String)>,
    stream: TcpStream,
    /// Bytes read from the connection and not yet decoded.
    raw: Vec<u8>,
    /// Body bytes decoded and not yet handed out.
    body: Vec<u8>,
    framing: Framing,
}

impl Response {
    /// Sends `request` to `127.0.0.1:port` and reads the answer's head (within `wait`).
    pub async fn send(port: u16, request: &Request<'_>, wait: Duration) -> io::Result<Response> {
        let deadline = Instant::now() + wait;
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        let mut head = format!("{} {} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n", request.method, request.path);
        for (name, value) in request.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", request.body.len()));
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(request.body).await?;
        let mut response = Response {
            status: 0,
            headers: Vec::new(),
            trailers: Vec::new(),
            stream,
            raw: Vec::new(),
            body: Vec::new(),
            framing: Framing::Close,
        };
        let end = loop {
            if let Some(end) = response.raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            if !response.read(deadline).await? {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no answer head"));
            }
        };
        let head = String::from_utf8_lossy(&response.raw[..end]).into_owned();
        response.raw.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        response.status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        for line in lines {
            if let Some((name, value)) = line.split_once(':') {
                response.headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        response.framing = if request.method == "HEAD" || matches!(response.status, 100..=199 | 204 | 304) {
            Framing::Done
        } else if response.header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
            Framing::Chunked(Chunk::Size)
        } else if let Some(length) = response.header("content-length").and_then(|l| l.parse().ok()) {
            Framing::Length(length)
        } else {
            Framing::Close
        };
        response.decode();
        Ok(response)
    }

    /// The values of header `name` (lowercase), joined by `, `.
    pub fn header(&self, name: &str) -> Option<String> {
        let values: Vec<&str> =
            self.headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect();
        (!values.is_empty()).then(|| values.join(", "))
    }

    /// Reads more from the connection: false at its end.
    async fn read(&mut self, deadline: Instant) -> io::Result<bool> {
        let mut buf = [0u8; 16 * 1024];
        let n = timeout_at(deadline, self.stream.read(&mut buf))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer in time"))??;
        self.raw.extend_from_slice(&buf[..n]);
        Ok(n > 0)
    }

    /// Decodes what has been read into body bytes, as far as it goes.
    fn decode(&mut self) {
        loop {
            match &mut self.framing {
                Framing::Done => return,
                Framing::Close => {
                    self.body.append(&mut self.raw);
                    return;
                }
                Framing::Length(left) => {
                    let n = (*left).min(self.raw.len());
                    self.body.extend(self.raw.drain(..n));
                    *left -= n;
                    if *left == 0 {
                        self.framing = Framing::Done;
                    }
                    return;
                }
                Framing::Chunked(Chunk::Data(left)) => {
                    let n = (*left).min(self.raw.len());
                    self.body.extend(self.raw.drain(..n));
                    *left -= n;
                    if *left > 0 {
                        return;
                    }
                    self.framing = Framing::Chunked(Chunk::DataEnd);
                }
                Framing::Chunked(state) => {
                    let Some(end) = self.raw.windows(2).position(|w| w == b"\r\n") else { return };
                    let line: Vec<u8> = self.raw.drain(..end + 2).take(end).collect();
                    let line = String::from_utf8_lossy(&line);
                    *state = match state {
                        Chunk::Size => {
                            let size = line.split(';').next().unwrap_or_default().trim();
                            match usize::from_str_radix(size, 16) {
                                Ok(0) | Err(_) => Chunk::Trailers,
                                Ok(size) => Chunk::Data(size),
                            }
                        }
                        Chunk::Trailers if line.is_empty() => {
                            self.framing = Framing::Done;
                            continue;
                        }
                        Chunk::Trailers => {
                            if let Some((name, value)) = line.split_once(':') {
                                self.trailers
                                    .push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
                            }
                            Chunk::Trailers
                        }
                        Chunk::DataEnd | Chunk::Data(_) => Chunk::Size,
                    };
                }
            }
        }
    }

    fn ended(&self) -> bool {
        matches!(self.framing, Framing::Done)
    }

    /// The next line of the body (without its line break; the unterminated rest at its
    /// end), waiting at most `wait`.
    pub async fn next_line(&mut self, wait: Duration) -> Line {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(end) = self.body.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.body.drain(..=end).take(end).collect();
                return Line::Text(line);
            }
            if self.ended() {
                return match self.body.is_empty() {
                    true => Line::Ended,
                    false => Line::Text(std::mem::take(&mut self.body)),
                };
            }
            match self.read(deadline).await {
                Ok(true) => self.decode(),
                // The connection closed: the body ends there, cut short or not.
                Ok(false) => self.framing = Framing::Done,
                Err(_) => return Line::Timeout,
            }
        }
    }

    /// The rest of the body, and whether it ended within `wait`.
    pub async fn rest(&mut self, wait: Duration) -> (Vec<u8>, bool) {
        let deadline = Instant::now() + wait;
        while !self.ended() {
            match self.read(deadline).await {
                Ok(true) => self.decode(),
                Ok(false) => self.framing = Framing::Done,
                Err(_) => return (std::mem::take(&mut self.body), false),
            }
        }
        (std::mem::take(&mut self.body), true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server on a free port that reads a request's head, answers `answer` in pieces and
    /// closes the connection a second later.
    async fn serve(answer: Vec<&'static [u8]>) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                let mut buf = [0u8; 1024];
                let n = socket.read(&mut buf).await.unwrap();
                seen.extend_from_slice(&buf[..n]);
            }
            for piece in answer {
                socket.write_all(piece).await.unwrap();
                socket.flush().await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            // The connection stays open a while, as a stream's does.
            tokio::time::sleep(Duration::from_secs(1)).await;
        });
        port
    }

    fn post(body: &[u8]) -> Request<'_> {
        Request { method: "POST", path: "/v3/watch", headers: &[], body }
    }

    #[tokio::test]
    async fn chunked_answers_are_read_line_by_line() {
        let port = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"8\r\n{\"a\":1",
            b"}\n\r\n3\r\n[2]\r\n",
            b"0\r\nGrpc-Trailer-X: y\r\n\r\n",
        ])
        .await;
        let wait = Duration::from_secs(5);
        let mut response = Response::send(port, &post(b"{}"), wait).await.unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-type").as_deref(), Some("application/json"));
        assert_eq!(response.next_line(wait).await, Line::Text(b"{\"a\":1}".to_vec()));
        assert_eq!(response.next_line(wait).await, Line::Text(b"[2]".to_vec()));
        assert_eq!(response.next_line(wait).await, Line::Ended);
        assert_eq!(response.trailers, [("grpc-trailer-x".to_owned(), "y".to_owned())]);
    }

    #[tokio::test]
    async fn sized_and_open_answers() {
        let port = serve(vec![b"HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\n\r\nNot Found\n"]).await;
        let mut response = Response::send(port, &post(b""), Duration::from_secs(5)).await.unwrap();
        assert_eq!(response.status, 404);
        assert_eq!(response.rest(Duration::from_secs(5)).await, (b"Not Found\n".to_vec(), true));
        // A stream that stays open: what came, and no end.
        let port = serve(vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nx\n\r\n"]).await;
        let mut response = Response::send(port, &post(b""), Duration::from_secs(5)).await.unwrap();
        assert_eq!(response.next_line(Duration::from_secs(5)).await, Line::Text(b"x".to_vec()));
        assert_eq!(response.next_line(Duration::from_millis(200)).await, Line::Timeout);
    }
}
