with

source as (

    select * from {{ source('voc', 'text_scores') }}

),

renamed as (

    select
        cast(source as {{ dbt.type_string() }}) as source,
        cast(text_id as {{ dbt.type_string() }}) as text_id,
        cast(customer_key as {{ dbt.type_string() }}) as customer_key,
        cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
        cast(created_at as date) as created_date,
        cast(resolved_at as {{ dbt.type_timestamp() }}) as resolved_at,
        cast(language as {{ dbt.type_string() }}) as language,
        cast(text as {{ dbt.type_string() }}) as text,
        cast(sentiment_score as double) as sentiment_score,
        cast(sentiment_label as {{ dbt.type_string() }}) as sentiment_label,
        cast(intent as {{ dbt.type_string() }}) as intent,
        cast(intent_source as {{ dbt.type_string() }}) as intent_source,
        cast(intent_confidence as double) as intent_confidence,
        cast(needs_review as boolean) as needs_review,
        cast(topic_id as integer) as topic_id,
        cast(topic_weight as double) as topic_weight

    from source

)

select * from renamed
