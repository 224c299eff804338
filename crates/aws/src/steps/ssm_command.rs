//! `ssm-command`: SendCommand `AWS-RunShellScript` on the action's instance, then
//! GetCommandInvocation every `interval` until the invocation ends.
//!
//! **Shell safety.** The script is the user's `commands`; every value a template substitutes
//! into them (metadata, tags, ...) is inserted as one single-quoted shell word, and `env`
//! values are exported the same way before the script, so a lifecycle message cannot
//! inject shell code.
//!
//! **Running twice.** The command's `Comment` carries a marker derived from the action's
//! token, the pipeline and the step. An attempt first looks for a command with that marker
//! and the same script on the instance (ListCommands): one still pending or running is
//! waited for instead of starting the script a second time, and one that succeeded counts
//! as done. A command that failed is sent again (that is what a retry is for).
//!
//! **Time.** The script gets `executionTimeout` = the attempt's limit, and a command still
//! running when the attempt runs out of time is cancelled (CancelCommand).

use aws_sdk_ssm::Client;
use lifehook_core::config::{SsmCommandStep, format_duration};
use lifehook_core::step::{Failure, Success};
use lifehook_core::template::shell_quote;
use sha2::{Digest as _, Sha256};

use super::{Cx, done, error_code, hex};

/// The document every `ssm-command` runs.
pub const DOCUMENT: &str = "AWS-RunShellScript";
/// How much of stdout/stderr goes into a report or an error.
const EXCERPT: usize = 2048;
/// SSM's longest `Comment`.
const MAX_COMMENT: usize = 100;
/// Pages of ListCommands looked through for an earlier attempt's command.
const MAX_PAGES: usize = 4;

pub(crate) async fn run(ssm: &Client, cx: &Cx<'_>, c: &SsmCommandStep) -> Result<Success, Failure> {
    let instance = cx.instance_id().to_owned();
    let script = script(cx, c)?;
    let comment = marker(cx);
    let started = tokio::time::Instant::now();
    let command_id = match earlier(ssm, cx, &instance, &comment, &script).await? {
        Some(id) => id,
        None => send(ssm, cx, c, &instance, &comment, script).await?,
    };
    let mut last_status = String::from("Pending");
    loop {
        match ssm
            .get_command_invocation()
            .command_id(&command_id)
            .instance_id(&instance)
            .send()
            .await
        {
            Ok(out) => {
                let status = out.status().map(|s| s.as_str()).unwrap_or("Pending");
                let code = out.response_code();
                let stdout = out.standard_output_content().unwrap_or_default();
                let stderr = out.standard_error_content().unwrap_or_default();
                match status {
                    "Success" => {
                        return Ok(done(format!(
                            "command {command_id} succeeded on {instance}{}",
                            excerpt_suffix(stdout)
                        )));
                    }
                    "Failed" | "TimedOut" | "Cancelled" => {
                        let message = format!(
                            "{}: command {command_id} on {instance} ended {status} (exit code {code}){}",
                            cx.who(),
                            excerpt_suffix(if stderr.trim().is_empty() {
                                stdout
                            } else {
                                stderr
                            })
                        );
                        // Someone cancelled it on purpose: running it again is not ours to decide.
                        return Err(if status == "Cancelled" {
                            Failure::fatal(message)
                        } else {
                            Failure::retry(message)
                        });
                    }
                    other => last_status = other.to_owned(),
                }
            }
            // AWS answers this for a moment right after SendCommand.
            Err(e) if error_code(&e) == Some("InvocationDoesNotExist") => {}
            Err(e) => {
                let f = cx.api(
                    &format!("GetCommandInvocation {command_id} on {instance}"),
                    &e,
                );
                if !f.retryable {
                    return Err(f);
                }
                cx.setback("polling the SSM command", &f.message);
            }
        }
        if !cx.pause(c.interval).await {
            let cancel = ssm
                .cancel_command()
                .command_id(&command_id)
                .instance_ids(&instance)
                .send();
            let cancelled = matches!(
                tokio::time::timeout(std::time::Duration::from_millis(900), cancel).await,
                Ok(Ok(_))
            );
            return Err(cx.timeout(format!(
                "command {command_id} on {instance} still {last_status} after {}; {}",
                format_duration(started.elapsed()),
                if cancelled {
                    "cancelled it"
                } else {
                    "could not cancel it"
                }
            )));
        }
    }
}

/// The script lines: `env` exported (quoted), then the commands with every substituted
/// value quoted.
fn script(cx: &Cx<'_>, c: &SsmCommandStep) -> Result<Vec<String>, Failure> {
    let mut lines = Vec::new();
    for (k, v) in &c.env {
        lines.push(format!("export {k}={}", shell_quote(&cx.render(v)?)));
    }
    for t in &c.commands {
        lines.push(
            t.render_escaped(&cx.env.template, shell_quote)
                .map_err(|e| Failure::fatal(format!("{}: {e}", cx.who())))?,
        );
    }
    Ok(lines)
}

/// `lifehook <16 hex> <step>`: the same for every attempt of this step for this action.
fn marker(cx: &Cx<'_>) -> String {
    let mut h = Sha256::new();
    for part in [
        cx.env.template.event.token.as_str(),
        cx.env.template.pipeline,
        &cx.step.name,
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let digest = hex(&h.finalize());
    let mut s = format!("lifehook {} {}", &digest[..16], cx.step.name);
    if s.len() > MAX_COMMENT {
        let mut end = MAX_COMMENT;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// A command an earlier attempt sent for this step and action that is still pending or
/// running, or that succeeded.
async fn earlier(
    ssm: &Client,
    cx: &Cx<'_>,
    instance: &str,
    comment: &str,
    script: &[String],
) -> Result<Option<String>, Failure> {
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let out = ssm
            .list_commands()
            .instance_id(instance)
            .max_results(50)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| cx.api(&format!("ListCommands on {instance}"), &e))?;
        for c in out.commands() {
            let same = c.comment() == Some(comment)
                && c.document_name() == Some(DOCUMENT)
                && c.parameters()
                    .and_then(|p| p.get("commands"))
                    .is_some_and(|lines| lines.as_slice() == script);
            let status = c.status().map(|s| s.as_str()).unwrap_or_default();
            if same && matches!(status, "Pending" | "InProgress" | "Success") {
                let id = c.command_id().unwrap_or_default().to_owned();
                tracing::info!(step = %cx.step.name, command_id = %id, status, "found this step's command from an earlier attempt; following it");
                return Ok(Some(id));
            }
        }
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => break,
        }
    }
    Ok(None)
}

async fn send(
    ssm: &Client,
    cx: &Cx<'_>,
    c: &SsmCommandStep,
    instance: &str,
    comment: &str,
    script: Vec<String>,
) -> Result<String, Failure> {
    let secs = cx.left().as_secs().max(1);
    let mut req = ssm
        .send_command()
        .document_name(DOCUMENT)
        .instance_ids(instance)
        .comment(comment)
        .parameters("commands", script)
        .parameters("executionTimeout", vec![secs.min(172_800).to_string()])
        // How long the command may wait to be delivered (SSM's minimum is 30 s).
        .timeout_seconds(i32::try_from(secs.clamp(30, 2_592_000)).unwrap_or(30));
    if let Some(wd) = &c.working_dir {
        req = req.parameters("workingDirectory", vec![cx.render(wd)?]);
    }
    let out = req
        .send()
        .await
        .map_err(|e| cx.api(&format!("SendCommand {DOCUMENT} to {instance}"), &e))?;
    out.command()
        .and_then(|c| c.command_id())
        .map(str::to_owned)
        .ok_or_else(|| Failure::retry(format!("{}: SendCommand answered no CommandId", cx.who())))
}

/// `: <text>` cut to [`EXCERPT`] bytes, or nothing for empty text.
fn excerpt_suffix(s: &str) -> String {
    let t = s.trim();
    if t.is_empty() {
        return String::new();
    }
    if t.len() <= EXCERPT {
        return format!(": {t}");
    }
    let mut end = EXCERPT;
    while !t.is_char_boundary(end) {
        end -= 1;
    }
    format!(": {}…", &t[..end])
}
