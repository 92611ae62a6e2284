//! The browser a `User-Agent` names, as a person knows it ("Chrome 131 on Windows 10"), for
//! the devices page and the security alerts. Parsed by Project Woothee's maintained data
//! set (the `woothee` crate), not by a table of our own.

use woothee::parser::Parser;

/// What Woothee says when it does not know.
const UNKNOWN: &str = "UNKNOWN";

/// "Browser version on system", as far as the agent tells; a tool's own name (`curl`)
/// when it is no browser Woothee knows; "Unknown browser" without an agent.
pub fn browser_name(agent: Option<&str>) -> String {
    let Some(agent) = agent.map(str::trim).filter(|a| !a.is_empty()) else {
        return "Unknown browser".to_owned();
    };
    let known = |text: &str| !text.is_empty() && text != UNKNOWN;
    let parsed = Parser::new().parse(agent);
    let browser = |r: &woothee::parser::WootheeResult| {
        known(r.name)
            && matches!(
                r.category,
                "pc" | "smartphone" | "mobilephone" | "appliance"
            )
    };
    let Some(result) = parsed.filter(browser) else {
        // Not a browser Woothee knows (a tool, a library, a crawler): the product name the
        // agent starts with.
        let first = agent.split_whitespace().next().unwrap_or(agent);
        return first.split('/').next().unwrap_or(first).to_owned();
    };
    let major = result.version.split('.').next().unwrap_or_default();
    let mut name = result.name.to_owned();
    if known(major) {
        name = format!("{name} {major}");
    }
    if known(result.os) {
        name = format!("{name} on {}", result.os);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::browser_name;

    #[test]
    fn browsers_are_named_as_people_know_them() {
        let cases = [
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/131.0.0.0 Safari/537.36",
                "Chrome 131 on Windows 10",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like \
                 Gecko) Version/18.1 Safari/605.1.15",
                "Safari 18 on Mac OSX",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 \
                 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
                "Safari 18 on iPhone",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
                "Firefox 133 on Linux",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/131.0.0.0 Mobile Safari/537.36",
                "Chrome 131 on Android",
            ),
            ("curl/8.5.0", "curl"),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 HeadlessChrome/156.0.0.0 Safari/537.36",
                "Chrome 156 on Linux",
            ),
            ("   ", "Unknown browser"),
        ];
        for (agent, name) in cases {
            assert_eq!(browser_name(Some(agent)), name, "{agent}");
        }
        assert_eq!(browser_name(None), "Unknown browser");
    }
}
