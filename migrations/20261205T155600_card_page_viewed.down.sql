DROP TABLE card_page_view;
