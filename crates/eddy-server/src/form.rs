//! A `multipart/form-data` body read as it arrives: small fields whole, within a budget, and a
//! file part as a stream that ends at the next boundary — never the whole body in memory.

use std::io;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use memchr::memmem::Finder;

/// One part's headers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartHeaders {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
}

/// Why a form could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FormError {
    #[error("the form is malformed: {0}")]
    Malformed(&'static str),
    #[error("the form's fields before the file are larger than {0} bytes")]
    TooLarge(usize),
    #[error("reading the body failed: {0}")]
    Body(#[source] io::Error),
}

/// The boundary of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty() && b.len() <= 70)
    })
}

/// A form being read.
pub struct Form<S> {
    stream: S,
    buf: BytesMut,
    finder: Finder<'static>,
    delimiter_len: usize,
    /// How far the buffer was searched for a delimiter without finding one.
    searched: usize,
    ended: bool,
}

impl<S, E> Form<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    pub fn new(stream: S, boundary: &str) -> Self {
        let delimiter = format!("\r\n--{boundary}").into_bytes();
        // The first delimiter has no line break before it: one is put there.
        let mut buf = BytesMut::with_capacity(64 * 1024);
        buf.extend_from_slice(b"\r\n");
        Self {
            stream,
            buf,
            delimiter_len: delimiter.len(),
            finder: Finder::new(&delimiter).into_owned(),
            searched: 0,
            ended: false,
        }
    }

    /// Reads one more chunk into the buffer; `false` at the end of the body.
    async fn fill(&mut self) -> Result<bool, FormError> {
        match self.stream.next().await {
            Some(Ok(chunk)) => {
                self.buf.extend_from_slice(&chunk);
                Ok(true)
            }
            Some(Err(e)) => Err(FormError::Body(io::Error::other(e.into()))),
            None => Ok(false),
        }
    }

    /// Where the next delimiter starts in the buffer, searching only what is new.
    fn find_delimiter(&mut self) -> Option<usize> {
        let from = self.searched.min(self.buf.len());
        match self.finder.find(&self.buf[from..]) {
            Some(i) => {
                self.searched = 0;
                Some(from + i)
            }
            None => {
                self.searched = self.buf.len().saturating_sub(self.delimiter_len - 1);
                None
            }
        }
    }

    /// Moves past the current part (or the preamble) to the next part and returns its
    /// headers; `None` at the end of the form. Skipped bytes count against `budget`.
    pub async fn next_part(
        &mut self,
        budget: &mut usize,
    ) -> Result<Option<PartHeaders>, FormError> {
        if self.ended {
            return Ok(None);
        }
        let limit = *budget;
        loop {
            if let Some(at) = self.find_delimiter() {
                self.spend(budget, at, limit)?;
                self.buf.advance(at + self.delimiter_len);
                break;
            }
            self.spend(budget, self.searched, limit)?;
            let keep = self.searched;
            self.buf.advance(keep);
            self.searched = 0;
            if !self.fill().await? {
                return Err(FormError::Malformed("it ends before its closing boundary"));
            }
        }
        while self.buf.len() < 2 {
            if !self.fill().await? {
                return Err(FormError::Malformed("it ends inside a boundary"));
            }
        }
        if self.buf.starts_with(b"--") {
            self.ended = true;
            return Ok(None);
        }
        // Then the part's headers, up to an empty line.
        let end = loop {
            if let Some(i) = memchr::memmem::find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            if self.buf.len() > limit.min(16 * 1024) {
                return Err(FormError::TooLarge(limit));
            }
            if !self.fill().await? {
                return Err(FormError::Malformed("a part's headers do not end"));
            }
        };
        self.spend(budget, end + 4, limit)?;
        let head = self.buf.split_to(end + 4);
        let text = std::str::from_utf8(&head[..end])
            .map_err(|_| FormError::Malformed("a part's headers are not UTF-8"))?;
        parse_headers(text.trim_start_matches(['\r', '\n', ' ', '\t'])).map(Some)
    }

    fn spend(&self, budget: &mut usize, n: usize, limit: usize) -> Result<(), FormError> {
        *budget = budget.checked_sub(n).ok_or(FormError::TooLarge(limit))?;
        Ok(())
    }

    /// The current part's value, whole; it counts against `budget`.
    pub async fn read_value(&mut self, budget: &mut usize) -> Result<Vec<u8>, FormError> {
        let limit = *budget;
        let mut value = Vec::new();
        while let Some(chunk) = self.next_chunk().await? {
            self.spend(budget, chunk.len(), limit)?;
            value.extend_from_slice(&chunk);
        }
        Ok(value)
    }

    /// The next piece of the current part's body; `None` when the part ends.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, FormError> {
        loop {
            if let Some(at) = self.find_delimiter() {
                if at == 0 {
                    return Ok(None);
                }
                return Ok(Some(self.buf.split_to(at).freeze()));
            }
            // Everything but what could be the start of a delimiter can go.
            let safe = self.searched;
            if safe > 0 {
                self.searched = 0;
                return Ok(Some(self.buf.split_to(safe).freeze()));
            }
            if !self.fill().await? {
                return Err(FormError::Malformed("it ends in the middle of a part"));
            }
        }
    }

    /// The current part's body as a stream (for a file).
    pub fn body(&mut self) -> impl Stream<Item = io::Result<Bytes>> + '_ {
        futures_util::stream::unfold(self, |form| async move {
            match form.next_chunk().await {
                Ok(Some(chunk)) => Some((Ok(chunk), form)),
                Ok(None) => None,
                Err(e) => Some((Err(io::Error::new(io::ErrorKind::InvalidData, e)), form)),
            }
        })
    }
}

/// `Content-Disposition: form-data; name="…"; filename="…"` and `Content-Type`.
fn parse_headers(text: &str) -> Result<PartHeaders, FormError> {
    let mut part = PartHeaders::default();
    let mut named = false;
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or(FormError::Malformed("a part header has no colon"))?;
        if name.trim().eq_ignore_ascii_case("content-type") {
            part.content_type = Some(value.trim().to_string());
        } else if name.trim().eq_ignore_ascii_case("content-disposition") {
            for param in value.split(';').skip(1) {
                let Some((key, raw)) = param.split_once('=') else {
                    continue;
                };
                let raw = raw.trim();
                let unquoted = raw
                    .strip_prefix('"')
                    .and_then(|r| r.strip_suffix('"'))
                    .unwrap_or(raw)
                    .to_string();
                match key.trim().to_ascii_lowercase().as_str() {
                    "name" => {
                        part.name = unquoted;
                        named = true;
                    }
                    "filename" => part.filename = Some(unquoted),
                    _ => {}
                }
            }
        }
    }
    if named {
        Ok(part)
    } else {
        Err(FormError::Malformed("a part has no name"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form_body(boundary: &str, file: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nuploads/${{filename}}\r\n").as_bytes());
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"Content-Type\"\r\n\r\ntext/plain\r\n").as_bytes());
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a b.txt\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
        body.extend_from_slice(file);
        body.extend_from_slice(format!("\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"after\"\r\n\r\nignored\r\n--{boundary}--\r\n").as_bytes());
        body
    }

    /// Reads a form delivered in chunks of the given sizes.
    async fn read(
        body: &[u8],
        boundary: &str,
        cuts: &[usize],
    ) -> (Vec<(PartHeaders, Vec<u8>)>, Vec<u8>) {
        let mut chunks = Vec::new();
        let mut rest = body;
        for cut in cuts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let n = (*cut).clamp(1, rest.len());
            chunks.push(Ok::<_, io::Error>(Bytes::copy_from_slice(&rest[..n])));
            rest = &rest[n..];
        }
        let mut form = Form::new(futures_util::stream::iter(chunks), boundary);
        let mut budget = 20 * 1024;
        let mut fields = Vec::new();
        let mut file = Vec::new();
        while let Some(part) = form.next_part(&mut budget).await.unwrap() {
            if part.name == "file" {
                let mut stream = Box::pin(form.body());
                while let Some(chunk) = stream.next().await {
                    file.extend_from_slice(&chunk.unwrap());
                }
                fields.push((part, Vec::new()));
            } else {
                let value = form.read_value(&mut budget).await.unwrap();
                fields.push((part, value));
            }
        }
        (fields, file)
    }

    #[tokio::test]
    async fn fields_and_a_file_are_read_whatever_the_chunking() {
        let file: Vec<u8> = (0..5000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let body = form_body("XyZ-boundary", &file);
        for cuts in [
            &[1usize][..],
            &[7, 3],
            &[4096],
            &[body.len()],
            &[13, 1, 200],
        ] {
            let (fields, got) = read(&body, "XyZ-boundary", cuts).await;
            assert_eq!(got, file, "{cuts:?}");
            let names: Vec<&str> = fields.iter().map(|(p, _)| p.name.as_str()).collect();
            assert_eq!(names, ["key", "Content-Type", "file", "after"]);
            assert_eq!(fields[0].1, b"uploads/${filename}");
            assert_eq!(fields[2].0.filename.as_deref(), Some("a b.txt"));
        }
    }

    #[tokio::test]
    async fn a_file_holding_boundary_lookalikes_is_kept_whole() {
        // Everything short of the whole delimiter (CRLF, two dashes, the full boundary).
        let file = b"--XyZ-boundary\r\n--XyZ-boundar\r\n\r\n-XyZ-boundary\r\n--XyZ-bounda".to_vec();
        let body = form_body("XyZ-boundary", &file);
        let (_, got) = read(&body, "XyZ-boundary", &[3]).await;
        assert_eq!(got, file);
    }

    #[tokio::test]
    async fn oversized_fields_and_truncated_forms_are_refused() {
        let boundary = "b";
        let big = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n{}\r\n--{boundary}--",
            "v".repeat(30_000)
        );
        let mut form = Form::new(
            futures_util::stream::iter([Ok::<_, io::Error>(Bytes::from(big))]),
            boundary,
        );
        let mut budget = 20 * 1024;
        form.next_part(&mut budget).await.unwrap();
        assert!(matches!(
            form.read_value(&mut budget).await,
            Err(FormError::TooLarge(_))
        ));

        let cut =
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nno end");
        let mut form = Form::new(
            futures_util::stream::iter([Ok::<_, io::Error>(Bytes::from(cut))]),
            boundary,
        );
        let mut budget = 20 * 1024;
        form.next_part(&mut budget).await.unwrap();
        assert!(form.read_value(&mut budget).await.is_err());
        assert_eq!(
            boundary_of("multipart/form-data; boundary=\"abc\""),
            Some("abc".into())
        );
        assert_eq!(boundary_of("application/json"), None);
    }

    fn boundary_of(content_type: &str) -> Option<String> {
        boundary(content_type)
    }

    proptest::proptest! {
        /// Any file, cut into any chunks, comes out as it went in.
        #[test]
        fn any_file_any_chunks(file in proptest::collection::vec(proptest::sample::select(vec![b'-', b'\r', b'\n', b'b', b'x']), 0..300),
                               cuts in proptest::collection::vec(1usize..40, 1..8)) {
            // A file may not hold the delimiter itself (a client picks a boundary it lacks).
            proptest::prop_assume!(!file.windows(6).any(|w| w == b"\r\n--bb"));
            let body = form_body("bb", &file);
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let (_, got) = runtime.block_on(read(&body, "bb", &cuts));
            proptest::prop_assert_eq!(got, file);
        }
    }
}
