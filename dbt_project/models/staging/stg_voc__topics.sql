with

source as (

    select * from {{ source('voc', 'topics') }}

),

renamed as (

    select
        cast(topic_id as integer) as topic_id,
        cast(label as {{ dbt.type_string() }}) as topic_label,
        cast(terms as {{ dbt.type_string() }}) as topic_terms

    from source

)

select * from renamed
