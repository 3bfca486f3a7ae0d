//! The table: created by `tacos store init`, checked when a host starts.

use super::expiry;
use anyhow::{Context, bail};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TableStatus,
};
use std::time::Duration;

/// Create the table (on-demand capacity, with the sparse `expiry` index)
/// unless it exists; wait until active.
/// Returns whether it was created.
pub async fn create_table(client: &Client, table: &str) -> anyhow::Result<bool> {
    let attr = |name: &str, kind| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(kind)
            .build()
    };
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    let created = client
        .create_table()
        .table_name(table)
        .attribute_definitions(attr("pk", ScalarAttributeType::S)?)
        .attribute_definitions(attr("sk", ScalarAttributeType::S)?)
        .attribute_definitions(attr("xs", ScalarAttributeType::S)?)
        .attribute_definitions(attr("ve", ScalarAttributeType::N)?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(expiry::INDEX)
                .key_schema(key("xs", KeyType::Hash)?)
                .key_schema(key("ve", KeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::Include)
                        .non_key_attributes("vl")
                        .build(),
                )
                .build()?,
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    let created = match created {
        Ok(_) => true,
        Err(e) => {
            let e = e.into_service_error();
            if !e.is_resource_in_use_exception() {
                return Err(e).with_context(|| format!("creating DynamoDB table {table}"));
            }
            false
        }
    };
    for _ in 0..120 {
        if status(client, table).await? == Some(TableStatus::Active) {
            return Ok(created);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bail!("DynamoDB table {table} did not become active within a minute")
}

async fn status(client: &Client, table: &str) -> anyhow::Result<Option<TableStatus>> {
    match client.describe_table().table_name(table).send().await {
        Ok(out) => Ok(out.table.and_then(|t| t.table_status)),
        Err(e) => {
            let e = e.into_service_error();
            if e.is_resource_not_found_exception() {
                Ok(None)
            } else {
                Err(e).with_context(|| format!("describing DynamoDB table {table}"))
            }
        }
    }
}

/// Fail clearly when the table is missing.
pub(super) async fn check(client: &Client, table: &str) -> anyhow::Result<()> {
    match status(client, table).await? {
        Some(_) => Ok(()),
        None => bail!(
            "DynamoDB table {table} does not exist: create it with `tacos store init` (same bundle and environment)"
        ),
    }
}
