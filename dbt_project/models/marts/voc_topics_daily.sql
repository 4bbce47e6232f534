with

texts as (

    select * from {{ ref('voc_texts') }}

),

final as (

    select
        created_date as date,
        topic_id,
        topic_label,
        cast(count(*) as {{ dbt.type_bigint() }}) as texts,
        cast(sum(case when sentiment_label = 'negative' then 1 else 0 end) as {{ dbt.type_bigint() }}) as negative_texts,
        cast(sum(case when source = 'ticket' then 1 else 0 end) as {{ dbt.type_bigint() }}) as tickets,
        avg(sentiment_score) as sentiment_avg

    from texts
    group by created_date, topic_id, topic_label

)

select * from final
