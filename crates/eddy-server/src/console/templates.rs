//! The templates that are not a section's: eddy's front page, signing in, and a failure.

use askama::Template;

#[derive(Template)]
#[template(path = "console/sign_in.html")]
pub struct SignIn {
    pub next: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/failure.html")]
pub struct Failure {
    pub status: u16,
    pub reason: &'static str,
    pub message: String,
}

#[derive(Template)]
#[template(path = "console/front.html")]
pub struct Front {}
