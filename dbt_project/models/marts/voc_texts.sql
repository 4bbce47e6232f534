with

texts as (

    select * from {{ ref('stg_voc__text_scores') }}

),

topics as (

    select * from {{ ref('stg_voc__topics') }}

),

final as (

    select
        texts.source,
        texts.text_id,
        texts.customer_key,
        texts.created_at,
        texts.created_date,
        texts.resolved_at,
        texts.language,
        texts.text,
        texts.sentiment_score,
        texts.sentiment_label,
        texts.intent,
        texts.intent_source,
        texts.intent_confidence,
        texts.needs_review,
        texts.topic_id,
        coalesce(topics.topic_label, 'no topic') as topic_label

    from texts
    left join topics
        on texts.topic_id = topics.topic_id

)

select * from final
