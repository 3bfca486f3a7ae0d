//! `tacos store init`: prepare the backends a bundle's `[store]` names, so
//! hosts can start on them.

use crate::bundle::{BUILT_COMPONENTS_DIR, Bundle};
use crate::store::open::Backend;
use anyhow::Context;
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub enum StoreCommand {
    /// Create the DynamoDB table and check Redis, as the bundle's `[store]` says.
    Init(InitArgs),
}

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The bundle (default: the built-in one, on the embedded store).
    #[arg(long, value_name = "FILE|DIR")]
    bundle: Option<PathBuf>,
    /// Where a packed bundle is unpacked.
    #[arg(long, default_value = "./.tacos", value_name = "DIR")]
    data_dir: PathBuf,
}

pub async fn store(cmd: StoreCommand) -> anyhow::Result<()> {
    let StoreCommand::Init(args) = cmd;
    let components = PathBuf::from(BUILT_COMPONENTS_DIR);
    let bundle = match &args.bundle {
        Some(path) => Bundle::open(path, &components, &args.data_dir.join("bundles"))?,
        None => Bundle::builtin(&components)?,
    };
    let settings = &bundle.store;
    let (kv, queue) = settings.backends()?;
    if kv == Backend::Embedded || queue == Backend::Embedded {
        println!(
            "embedded: created on first start in the host's --data-dir ({})",
            args.data_dir.display()
        );
    }
    if kv == Backend::Redis || queue == Backend::Redis {
        let shown = settings.redis.shown_url();
        let client = settings.redis.client()?;
        let mut con = client
            .get_multiplexed_async_connection()
            .await
            .with_context(|| format!("connecting to redis at {shown}"))?;
        let _: String = ::redis::cmd("PING")
            .query_async(&mut con)
            .await
            .with_context(|| format!("redis at {shown}"))?;
        println!(
            "redis: {shown} answers (keys under `{}`)",
            settings.redis.prefix()
        );
    }
    if kv == Backend::Dynamodb {
        let d = &settings.dynamodb;
        let client = d.client().await;
        let table = d.table();
        match crate::store::dynamodb::create_table(&client, table).await? {
            true => println!("dynamodb: created table {table}"),
            false => println!("dynamodb: table {table} exists"),
        }
    }
    Ok(())
}
