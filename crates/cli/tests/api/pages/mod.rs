//! The web pages as a browser without JavaScript uses them: forms, cookies, CSRF.

mod devices;
mod passwords;
mod sign_in;
mod sign_up;
mod team;
mod two_factor;
