//! `hoist lock status` and `hoist unlock`, and the commands a lock records: against the same
//! fake Parameter Store, with SSM's command invocations.

use super::*;

#[tokio::test]
async fn status_and_unlock_say_whose_lock_it_is() {
    let yaml = "app: web\ntargets:\n  tags:\n    Env: [prod]\n";
    let config = crate::config::parse(yaml, "hoist.yaml".as_ref(), ".".as_ref()).unwrap();
    let store = Arc::new(Mutex::new(Store::default()));
    let (client, [_, _, delete, ..]) = client(&store);
    let free = status(&client, &config).await.unwrap();
    assert!(!free.locked && !free.stale && free.holder.is_none());
    assert!(
        free.to_text().ends_with(": not locked\n"),
        "{}",
        free.to_text()
    );
    assert!(
        unlock(&client, &config, Breaking::Refuse)
            .await
            .unwrap()
            .is_none(),
        "nothing to break"
    );
    store.lock().unwrap().value = Some(theirs(240));
    let live = status(&client, &config).await.unwrap();
    assert!(live.locked && !live.stale);
    assert!(
        live.to_text().contains("locked by octo/web run 42"),
        "{}",
        live.to_text()
    );
    store.lock().unwrap().value = Some(theirs(-5));
    let stale = status(&client, &config).await.unwrap();
    assert!(stale.locked && stale.stale);
    assert!(stale.to_text().contains("STALE"), "{}", stale.to_text());
    let json = serde_json::to_value(&stale).unwrap();
    assert_eq!(json["holder"]["holder"], "octo/web run 42 attempt 1 (mona)");
    assert_eq!(json["stale"], true);
    let broken = unlock(&client, &config, Breaking::Refuse)
        .await
        .unwrap()
        .expect("a lock was broken");
    assert_eq!(
        broken.holder.unwrap().holder,
        "octo/web run 42 attempt 1 (mona)"
    );
    assert!(stored(&store).is_none());
    assert_eq!(delete.num_calls(), 1);
}

/// A lock whose lease ended while a command of its run still runs is live, not stale: the
/// next deploy refuses it naming the command, `lock status` says so, and `unlock` refuses it
/// unless told to cancel the commands (then cancels them and breaks it) or to force it.
/// Once every command ended, the same lock is stale.
#[tokio::test]
async fn a_lock_whose_commands_still_run_is_live_whatever_its_lease() {
    let yaml = "app: web\ntargets:\n  tags:\n    Env: [prod]\n";
    let config = crate::config::parse(yaml, "hoist.yaml".as_ref(), ".".as_ref()).unwrap();
    let store = Arc::new(Mutex::new(Store::default()));
    let (client, [_, _, delete, ..]) = client(&store);
    let spec = LockSpec {
        parameter: parameter(&config),
        lease: Duration::from_secs(300),
    };
    {
        let mut st = store.lock().unwrap();
        st.value = Some(theirs_with(-5, &["cmd-done", "cmd-running"]));
        st.commands
            .insert("cmd-done".into(), CommandInvocationStatus::Success);
        st.commands
            .insert("cmd-running".into(), CommandInvocationStatus::InProgress);
    }
    let err = acquire(
        &client,
        &spec,
        &request("ci"),
        None,
        fast(),
        Arc::new(Silent),
        &CancellationToken::new(),
    )
    .await
    .err()
    .expect("refused");
    assert!(
        matches!(err, LockError::Live { .. }) && err.is_contention(),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("SSM command(s) cmd-running (InProgress on 1) have not ended")
            && !message.contains("cmd-done")
            && message.contains("its lease expired: that hoist is gone, its commands are not"),
        "{message}"
    );
    let live = status(&client, &config).await.unwrap();
    assert!(live.locked && !live.stale, "{:?}", live.live_commands);
    assert!(
        live.to_text()
            .contains("still running: SSM command(s) cmd-running (InProgress on 1)"),
        "{}",
        live.to_text()
    );
    let refused = unlock(&client, &config, Breaking::Refuse)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("--cancel-commands"),
        "{refused}"
    );
    assert!(stored(&store).is_some() && delete.num_calls() == 0);

    let broken = unlock(&client, &config, Breaking::CancelCommands)
        .await
        .unwrap()
        .expect("broken");
    assert_eq!(broken.live_commands.len(), 1);
    assert_eq!(store.lock().unwrap().cancels, ["cmd-running"]);
    assert!(stored(&store).is_none());

    // Forced: broken, the command left alone.
    store.lock().unwrap().value = Some(theirs_with(240, &["cmd-other"]));
    store
        .lock()
        .unwrap()
        .commands
        .insert("cmd-other".into(), CommandInvocationStatus::Pending);
    assert!(
        unlock(&client, &config, Breaking::Force)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.lock().unwrap().cancels, ["cmd-running"]);

    // Every command ended: stale.
    store.lock().unwrap().value = Some(theirs_with(-5, &["cmd-done"]));
    let stale = status(&client, &config).await.unwrap();
    assert!(stale.stale && stale.live_commands.is_empty());
}

/// A command the run sends is written to its lock at once, not at the next renewal (an
/// hour away here), and the lease is renewed with it.
#[tokio::test]
async fn a_recorded_command_is_written_to_the_lock_at_once() {
    let store = Arc::new(Mutex::new(Store::default()));
    let (client, _rules) = client(&store);
    let held = acquire(
        &client,
        &spec(),
        &request("ci"),
        None,
        fast(),
        Arc::new(Silent),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert!(stored(&store).unwrap().commands.is_empty());
    let recorder = held.recorder();
    recorder.record("cmd-1");
    recorder.record("cmd-2");
    let deadline = Instant::now() + Duration::from_secs(5);
    while stored(&store).unwrap().commands != ["cmd-1", "cmd-2"] {
        assert!(Instant::now() < deadline, "{:?}", stored(&store));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    held.release().await;
    assert!(stored(&store).is_none());
}
